/**
 * A real Prometheus for the integration tests: {@link prometheusScraping}
 * starts one as an Effect resource, {@link query} reads an instant vector over
 * its HTTP API and {@link eventually} polls until the scrapes have caught up.
 */
import { Effect, Schedule, Schema } from "effect"
import { type Prometheus, startPrometheus } from "../../servers/Servers.ts"

/** Starts a Prometheus scraping `targets` (`host:port`, at `/metrics`) every second, stopped with the scope. */
export const prometheusScraping = (targets: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.promise(() => startPrometheus({ scrapeTargets: targets })),
    (prometheus) => Effect.promise(() => prometheus.stop())
  )

/** `GET url`, its JSON body decoded with `schema`. */
export const getJson = <S extends Schema.Top>(schema: S, url: string) =>
  Effect.tryPromise(() => fetch(url).then((response) => response.json())).pipe(
    Effect.flatMap(Schema.decodeUnknownEffect(schema))
  )

export const Labels = Schema.Record(Schema.String, Schema.String)

export const Sample = Schema.Struct({ metric: Labels, value: Schema.Tuple([Schema.Number, Schema.String]) })

/** The body of `/api/v1/query` for an instant vector. */
export const Vector = Schema.Struct({ data: Schema.Struct({ result: Schema.Array(Sample) }) })

export const Exemplar = Schema.Struct({ labels: Labels, timestamp: Schema.Number })

/** The body of `/api/v1/query_exemplars`. */
export const Exemplars = Schema.Struct({
  data: Schema.Array(Schema.Struct({ seriesLabels: Labels, exemplars: Schema.Array(Exemplar) }))
})

/** A series' labels as `label="value",…`, sorted by name: how {@link query} names the series it returns. */
export const series = (labels: Readonly<Record<string, string>>): string =>
  Object.entries(labels)
    .toSorted(([a], [b]) => a.localeCompare(b))
    .map(([name, value]) => `${name}="${value}"`)
    .join(",")

/** The instant vector of `promql` as {@link series} of its labels (without `__name__`) → value. */
export const query = (prometheus: Prometheus, promql: string) =>
  getJson(Vector, `${prometheus.url}/api/v1/query?query=${encodeURIComponent(promql)}`).pipe(
    Effect.map(({ data }) =>
      Object.fromEntries(data.result.map(({ metric, value }) => [
        series(Object.fromEntries(Object.entries(metric).filter(([name]) => name !== "__name__"))),
        Number(value[1])
      ]))
    )
  )

/**
 * Retries `self` every 200 ms until `ready` holds of its result, for at most
 * ~20 s: Prometheus 2.42 applies a new scrape config's static targets only
 * after its 5 s reload throttle, then scrapes every second.
 */
export const eventually = <A, E, R>(self: Effect.Effect<A, E, R>, ready: (value: A) => boolean) =>
  self.pipe(
    Effect.filterOrFail(ready, (value) => new Error(`not yet: ${JSON.stringify(value)}`)),
    Effect.retry({ schedule: Schedule.spaced("200 millis"), times: 100 })
  )
