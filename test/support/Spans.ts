/** Spans in specs over `ObservabilityTest`. */
import { Effect } from "effect"
import { Testing } from "../../src/index.ts"

/** The spans finished since the last call, forgetting them. */
export const takeSpans = Effect.gen(function*() {
  const spans = yield* Testing.TestSpans
  const finished = yield* spans.finished
  yield* spans.clear
  return finished
})
