/**
 * Running a program as the process's main effect, the way a service wants to
 * stop: the first SIGINT or SIGTERM interrupts it, so in-flight work finishes
 * its finalizers and every layer is released (spans flushed, clients closed);
 * a second signal forces the exit (130). Interruption by a signal exits 0, a
 * failure 1 (after logging it).
 *
 * One stop request often arrives as several signals: a terminal's Ctrl-C
 * reaches every process of the foreground group, and `npm run` forwards the
 * same signal to its script again. So signals within {@link repeatWindowMillis}
 * of the first count as that first one; a person's second Ctrl-C after it
 * still forces the exit. A program started by a supervisor over an IPC channel
 * (`child_process.fork`, or `spawn` with `"ipc"`) also stops when that channel
 * closes: the supervisor is gone, and nobody else will send it a signal.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Main, ObservabilityLive } from "dag-observability"
 *
 * Effect.never.pipe(Effect.provide(ObservabilityLive("poh-node")), Main.runMain)
 * ```
 */
import { Cause, Effect, Exit, Runtime } from "effect"
import * as Logging from "./Logging.ts"

const signals = ["SIGINT", "SIGTERM"] as const

/** How long after the first stop request more signals count as the same request. */
export const repeatWindowMillis = 500

/** The exit code of a program's end: 0 for success or interruption alone, else 1. */
export const exitCode = (exit: Exit.Exit<unknown, unknown>): number =>
  Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1

const run = Runtime.makeRunMain(({ fiber }) => {
  let firstAt: number | undefined
  const onStop = () => {
    const now = performance.now()
    if (firstAt === undefined) {
      firstAt = now
      fiber.interruptUnsafe(fiber.id)
    } else if (now - firstAt > repeatWindowMillis) {
      process.exit(130)
    }
  }
  // A closed channel is a stop request however soon it comes; once stopping, it forces the exit.
  const onDisconnect = () => firstAt === undefined ? onStop() : process.exit(130)
  fiber.addObserver((exit) => {
    for (const signal of signals) process.removeListener(signal, onStop)
    process.removeListener("disconnect", onDisconnect)
    process.exit(exitCode(exit))
  })
  for (const signal of signals) process.on(signal, onStop)
  if (process.connected) {
    process.on("disconnect", onDisconnect)
    // The channel alone does not keep the program running.
    process.channel?.unref()
  }
})

/**
 * Runs `program` until it ends or a signal stops it, then exits the process with {@link exitCode}. A failure is
 * logged first as the program's own lines are (`Logging.logFailure`: a JSON line off a terminal or with
 * `LOG_FORMAT=json`), one line for the one-line errors that stop a program at start (`InvalidConfig`, `ListenError`).
 */
export const runMain = <A, E>(program: Effect.Effect<A, E>): void =>
  run(
    Effect.tapCause(program, (cause) =>
      Cause.hasInterruptsOnly(cause) || !Runtime.getErrorReported(Cause.squash(cause))
        ? Effect.void
        : Logging.logFailure(cause)),
    { disableErrorReporting: true }
  )
