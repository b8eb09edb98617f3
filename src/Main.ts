/**
 * Running a program as the process's main effect, the way a service wants to
 * stop: the first SIGINT or SIGTERM interrupts it, so in-flight work finishes
 * its finalizers and every layer is released (spans flushed, clients closed);
 * a second signal forces the exit. Interruption by a signal exits 0, a failure
 * 1 (after logging it).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Main, ObservabilityLive } from "dag-observability"
 *
 * Effect.never.pipe(Effect.provide(ObservabilityLive("poh-node")), Main.runMain)
 * ```
 */
import { Cause, type Effect, Exit, Runtime } from "effect"

const signals = ["SIGINT", "SIGTERM"] as const

/** The exit code of a program's end: 0 for success or interruption alone, else 1. */
export const exitCode = (exit: Exit.Exit<unknown, unknown>): number =>
  Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1

/** Runs `program` until it ends or a signal stops it, then exits the process with {@link exitCode}. */
export const runMain: <A, E>(program: Effect.Effect<A, E>) => void = Runtime.makeRunMain(({ fiber }) => {
  let received = 0
  const onSignal = () => {
    received += 1
    if (received > 1) process.exit(130)
    fiber.interruptUnsafe(fiber.id)
  }
  fiber.addObserver((exit) => {
    for (const signal of signals) process.removeListener(signal, onSignal)
    process.exit(exitCode(exit))
  })
  for (const signal of signals) process.on(signal, onSignal)
})
