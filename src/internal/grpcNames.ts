/**
 * @internal
 *
 * How gRPC calls are named and carry trace context: bounded method and status
 * names for spans and labels, W3C trace context in metadata, the server's
 * address as semantic-convention attributes. Re-exported by `Grpc`.
 */
import type * as grpc from "@grpc/grpc-js"
import { status } from "@grpc/grpc-js"
import type { Attributes, TextMapGetter, TextMapSetter } from "@opentelemetry/api"
import { Predicate } from "effect"

/** The label and attribute value for a service or method that cannot be named. */
export const otherName = "other"

/** A gRPC method as its path `/<package.Service>/<Method>` names it. */
export interface MethodName {
  /** `package.Service`, or {@link otherName}. */
  readonly service: string
  /** `Method`, or {@link otherName}. */
  readonly method: string
  /** The span name: `package.Service/Method`. */
  readonly name: string
}

/**
 * Splits a method path. grpc-js runs interceptors only for methods the server
 * registered (it answers UNIMPLEMENTED before any interceptor otherwise), so the
 * labels stay bounded; a path of another shape is {@link otherName}.
 *
 * @example
 * ```ts
 * Grpc.methodName("/poh.PohService/Request")
 * // { service: "poh.PohService", method: "Request", name: "poh.PohService/Request" }
 * ```
 */
export const methodName = (path: string): MethodName => {
  const match = /^\/([\w.]{1,128})\/(\w{1,128})$/.exec(path)
  return match === null
    ? { service: otherName, method: otherName, name: `${otherName}/${otherName}` }
    : { service: match[1]!, method: match[2]!, name: `${match[1]}/${match[2]}` }
}

/** A status code's name (`OK`, `UNAVAILABLE`, …), the `code` label; `UNKNOWN` for a code gRPC does not define. */
export const statusName = (code: grpc.status): string => status[code] ?? "UNKNOWN"

/** Reads W3C trace context from gRPC metadata. */
export const metadataGetter: TextMapGetter<grpc.Metadata> = {
  keys: (metadata) => Object.keys(metadata.getMap()),
  get: (metadata, key) => {
    const values = metadata.get(key).filter(Predicate.isString)
    return values.length === 0 ? undefined : values.length === 1 ? values[0] : values
  }
}

/** Writes W3C trace context into gRPC metadata. */
export const metadataSetter: TextMapSetter<grpc.Metadata> = {
  set: (metadata, key, value) => metadata.set(key, value)
}

/** `server.address` and `server.port` of `host:port`, `[v6]:port` or a `dns:` target; empty when it names no port. */
export const serverAttributes = (address: string): Attributes => {
  const match = /^(?:[a-z][a-z0-9+.-]*:(?:\/\/[^/]*\/)?)?\[?([^\]/]*?)\]?:(\d{1,5})$/i.exec(address)
  return match === null ? {} : { "server.address": match[1]!, "server.port": Number(match[2]) }
}
