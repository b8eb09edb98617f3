/** @internal */
import { Effect } from "effect"

/**
 * Records a typed failure's tag as the current span's `error.type` attribute
 * (OpenTelemetry semantic conventions). Pass it to `Effect.fn` after the body
 * so it runs inside the span.
 */
export const errorType = <A, E extends { readonly _tag: string }, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> => Effect.tapError(self, (error) => Effect.annotateCurrentSpan("error.type", error._tag))
