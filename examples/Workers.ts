/**
 * A node of the example network on every core: {@link supervise} forks this
 * script `count` times with `node:cluster` (the workers share the HTTP port:
 * the primary accepts connections and hands them out in turn), waits for each
 * to say where it listens ({@link NodeProcess.announce} reaches the primary
 * in a worker) and stops them all, at once, when its scope closes: SIGTERM to
 * each, so each drains as a node does, then SIGKILL after 15 s; one line per
 * worker says how it ended. A worker that
 * ends on its own stops the others and the program fails with
 * {@link WorkerExited} (exit code 1); the worker has printed its own error,
 * so the primary adds one warning line.
 */
import cluster, { type Worker } from "node:cluster"
import { once } from "node:events"
import { Data, Effect, Runtime, Schema } from "effect"
import type { Endpoints } from "./NodeProcess.ts"

/** The worker's number, from 1, in the environment of each worker. */
export const workerVariable = "DAG_WORKER_INDEX"

/** A worker ended on its own. */
export class WorkerExited extends Data.TaggedError("WorkerExited")<{
  readonly index: number
  readonly code: number | null
  readonly signal: string | null
}> {
  /** The worker reported its failure itself: no second report. */
  override readonly [Runtime.errorReported] = false

  override get message(): string {
    return `worker ${this.index} ended (${this.code === null ? this.signal : `code ${this.code}`})`
  }
}

const Ready = Schema.Struct({ ready: Schema.Record(Schema.String, Schema.String) })

/** How long a worker may take to stop after SIGTERM before it is killed. */
const stopTimeoutMillis = 15_000

/** Stops `worker` (SIGTERM, SIGKILL after {@link stopTimeoutMillis}); how it ended. */
const stop = async (worker: Worker): Promise<string> => {
  const child = worker.process
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(worker, "exit")
    child.kill("SIGTERM")
    const timer = setTimeout(() => child.kill("SIGKILL"), stopTimeoutMillis)
    await exited
    clearTimeout(timer)
  }
  return child.exitCode === null ? `killed by ${child.signalCode}` : `exit code ${child.exitCode}`
}

/** Fails with {@link WorkerExited} when `worker` ends. */
const exited = (worker: Worker, index: number) =>
  Effect.flatMap(
    Effect.promise(() => once(worker, "exit") as Promise<[number | null, string | null]>),
    ([code, signal]) => Effect.fail(new WorkerExited({ index, code, signal }))
  )

/** Where `worker` listens, once it says so; {@link WorkerExited} if it ends first. */
const ready = (worker: Worker, index: number) =>
  Effect.raceFirst(
    Effect.callback<Endpoints>((resume) => {
      const onMessage = (message: unknown) => {
        if (Schema.is(Ready)(message)) resume(Effect.succeed(message.ready))
      }
      worker.on("message", onMessage)
      return Effect.sync(() => worker.off("message", onMessage))
    }),
    exited(worker, index)
  )

/** The number of this process's worker, when it is one. */
export const workerIndex = (): number | undefined =>
  cluster.isWorker ? Number(process.env[workerVariable] ?? cluster.worker?.id ?? 1) : undefined

/**
 * Forks `count` workers of this script (worker `i` told its number in
 * {@link workerVariable}); succeeds with each one's endpoints, in order, once all are
 * ready, and stops them with the scope. `watch` fails with
 * {@link WorkerExited} when one ends on its own.
 */
export const supervise = (count: number) =>
  Effect.gen(function*() {
    const workers = yield* Effect.acquireRelease(
      Effect.sync(() =>
        Array.from({ length: count }, (_, i) => cluster.fork({ [workerVariable]: String(i + 1) }))
      ),
      (started) =>
        Effect.promise(() => Promise.all(started.map(stop))).pipe(
          Effect.flatMap((ends) => Effect.forEach(ends, (end, i) => Effect.log(`worker ${i + 1} stopped: ${end}`)))
        )
    )
    const endpoints = yield* Effect.forEach(workers, (worker, i) => ready(worker, i + 1), { concurrency: "unbounded" })
    const watch = Effect.raceAll(workers.map((worker, i) => exited(worker, i + 1))).pipe(
      Effect.tapError((error) => Effect.logWarning(`${error.message}: stopping the other workers`))
    )
    return { endpoints, watch }
  })
