/**
 * A console for Effect's `Console.Console` reference that keeps what is written to it, a line per call, instead of
 * printing it: what the loggers write, without the test's output filling with it.
 */
import type { Console } from "effect"

/** A console keeping each `log`/`error` call as one line (its arguments joined by spaces), and those lines. */
export const recordingConsole = () => {
  const lines: Array<string> = []
  const keep = (...args: ReadonlyArray<unknown>) => void lines.push(args.map(String).join(" "))
  const console = Object.assign(Object.create(globalThis.console) as Console.Console, {
    log: keep,
    error: keep,
    group: () => undefined,
    groupEnd: () => undefined
  })
  return { lines, console }
}
