/**
 * A server that cannot listen where it was asked to: `/metrics`, an HTTP
 * API, a gRPC service. One line naming what, the address, the setting it came
 * from and why, so that a program stopped by it says what to change.
 *
 * @example
 * ```ts
 * new ListenError({ server: "/metrics", address: "0.0.0.0:8000", setting: "PROMETHEUS_BIND", reason: "listen EADDRINUSE" })
 * // ListenError: cannot serve /metrics on 0.0.0.0:8000 (PROMETHEUS_BIND): listen EADDRINUSE
 * ```
 */
import { Schema } from "effect"
import { oneLine } from "./internal/oneLine.ts"

/** A server could not listen on its address. */
export class ListenError extends Schema.TaggedError<ListenError>()("ListenError", {
  /** What was to be served: `/metrics`, `HTTP`, `PoH gRPC`, … */
  server: Schema.String,
  /** `host:port` asked for. */
  address: Schema.String,
  /** The setting the address came from, such as `PROMETHEUS_BIND`, when it came from one. */
  setting: Schema.optional(Schema.String),
  reason: Schema.String
}) {
  override get message(): string {
    const from = this.setting === undefined ? "" : ` (${this.setting})`
    return `cannot serve ${this.server} on ${this.address}${from}: ${this.reason}`
  }

  constructor(
    fields: { readonly server: string; readonly address: string; readonly setting?: string; readonly reason: string }
  ) {
    super(fields)
    oneLine(this)
  }
}

/** Why listening failed, in words: the error's message, else its name. */
export const reasonOf = (cause: unknown): string =>
  cause instanceof Error ? cause.message || cause.name : String(cause) || "unknown error"
