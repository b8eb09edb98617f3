/**
 * @internal
 *
 * How settings' texts become values: the {@link Parser} shape and the
 * parsers `Settings` offers (addresses, ratios, durations, booleans), and the
 * credentials hidden in what an error repeats. Re-exported by `Settings`.
 */
import { Duration } from "effect"

/** How a variable's text becomes a value. */
export interface Parser<A> {
  /** What is accepted, as the error says it: `expected <this>`. */
  readonly expected: string
  /** The value, or `undefined` when `text` is not accepted. */
  readonly parse: (text: string) => A | undefined
  /** The text as the error may repeat it (hide secrets here); as it is by default. */
  readonly shown?: (text: string) => string
}

/** A `host:port` to listen on; port 0 picks a free one. */
export interface Bind {
  readonly host: string
  readonly port: number
}

/** Parses `host:port`, `:port` or `[v6]:port`; port 0–65535. */
export const parseBind = (value: string): Bind | undefined => {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(value)
  if (match === null) return undefined
  const port = Number(match[3])
  if (port > 65535) return undefined
  return { host: match[1] ?? (match[2] || "0.0.0.0"), port }
}

/** `host:port`, the host in brackets when it is an IPv6 address. */
export const formatAddress = (host: string, port: number): string =>
  host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`

/** A {@link Parser} of `host:port` addresses, such as `example`. */
export const bind = (example: string): Parser<Bind> => ({
  expected: `host:port with a port from 0 to 65535, such as ${example}`,
  parse: parseBind
})

/** A {@link Parser} of a number from 0 to 1. */
export const ratio: Parser<number> = {
  expected: "a number from 0 to 1",
  parse: (text) => {
    const value = Number(text)
    return Number.isFinite(value) && value >= 0 && value <= 1 ? value : undefined
  }
}

/** A {@link Parser} of a finite number above 0. */
export const positive: Parser<number> = {
  expected: "a number above 0",
  parse: (text) => {
    const value = Number(text)
    return Number.isFinite(value) && value > 0 ? value : undefined
  }
}

/** A {@link Parser} of a whole number from 0 up, such as a limit. */
export const count: Parser<number> = {
  expected: "a whole number from 0 up",
  parse: (text) => {
    const value = Number(text)
    return Number.isSafeInteger(value) && value >= 0 ? value : undefined
  }
}

/** Milliseconds in one of each unit {@link duration} accepts, by the unit's names. */
const durationUnits: ReadonlyArray<readonly [ReadonlyArray<string>, number]> = [
  [["", "ms", "msec", "msecs", "milli", "millis", "millisecond", "milliseconds"], 1],
  [["s", "sec", "secs", "second", "seconds"], 1_000],
  [["m", "min", "mins", "minute", "minutes"], 60_000]
]

/** The longest {@link duration}: Node.js timers take at most 2³¹−1 ms (about 24.8 days). */
const maxDurationMillis = 2 ** 31 - 1

/**
 * A {@link Parser} of a timeout: a whole number of milliseconds (`1500`) or a number and a unit, with or without a
 * space (`500ms`, `1.5s`, `2 seconds`, `1 minute`), from 1 ms to 2³¹−1 ms (Node.js timers take no more).
 */
export const duration: Parser<Duration.Duration> = {
  expected: "a duration from 1 ms to 24 days: milliseconds (1500) or a number and a unit (500ms, 1.5s, 2 seconds)",
  parse: (text) => {
    const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text)
    if (match === null) return undefined
    const unit = durationUnits.find(([names]) => names.includes(match[2]!.toLowerCase()))
    if (unit === undefined || (match[2] === "" && match[1]!.includes("."))) return undefined
    const millis = Number(match[1]) * unit[1]
    return millis >= 1 && millis <= maxDurationMillis ? Duration.millis(Math.round(millis)) : undefined
  }
}

/** A {@link Parser} of `true` or `false`, in any case. */
export const boolean: Parser<boolean> = {
  expected: "true or false",
  parse: (text) => {
    const lower = text.toLowerCase()
    return lower === "true" ? true : lower === "false" ? false : undefined
  }
}

/**
 * Hides the user-info part of every URL in `text` (`scheme://user:password@host` → `scheme://***@host`), so
 * an error message quoting a connection string can be shown too. Everything up to the last `@` before a space goes,
 * so a malformed URL (`mongodb:user:pw@host`, an unescaped `/` or `@` in the password) leaks nothing either.
 */
export const redactCredentials = (text: string): string =>
  text.includes("@") ? text.replace(/([a-z][a-z0-9+.-]*:(?:\/\/)?)\S*@/gi, "$1***@") : text

/** A {@link Parser} of http(s) URLs with a host. */
export const httpUrl: Parser<string> = {
  expected: "an http(s) URL such as http://localhost:4317",
  parse: (text) => {
    if (!URL.canParse(text)) return undefined
    const url = new URL(text)
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "" ? text : undefined
  }
}
