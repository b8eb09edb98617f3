/**
 * Captures what a program says while an effect runs: every message of Effect's loggers, every `console` call and every
 * write to stdout and stderr, for asserting that a secret appears in none of them.
 */
import { Effect, Logger } from "effect"

/**
 * Runs `self` with a logger that keeps each formatted line (beside the default one), and `console` and the stdout and
 * stderr writes copied; its exit and the lines seen. All are restored when it ends, however it ends.
 */
export const capturingOutput = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const logger = Logger.map(Logger.formatSimple, (line) => {
      lines.push(line)
    })
    const streams = [process.stdout, process.stderr].map((stream) => {
      const write = stream.write.bind(stream)
      stream.write = ((chunk: string | Uint8Array, ...rest: Array<never>) => {
        lines.push(String(chunk))
        return write(chunk, ...rest)
      }) as typeof stream.write
      return () => (stream.write = write)
    })
    const methods = (["log", "info", "warn", "error", "debug", "trace"] as const).map((name) => {
      const method = console[name]
      console[name] = (...args: Array<unknown>) => {
        lines.push(args.map(String).join(" "))
        method.apply(console, args)
      }
      return () => (console[name] = method)
    })
    const restore = [...streams, ...methods]
    const exit = yield* Effect.exit(self.pipe(Effect.provide(Logger.layer([logger, Logger.defaultLogger])))).pipe(
      Effect.ensuring(Effect.sync(() => restore.forEach((undo) => undo())))
    )
    return { exit, lines }
  })
