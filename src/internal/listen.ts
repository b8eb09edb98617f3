/** @internal */
import type { MongoClient, MongoClientEvents } from "mongodb"

type Listener = (event: never) => void

/**
 * Adds `listeners` to the client's events; returns the function that removes
 * exactly them. The driver calls listeners inside its operations, so one that
 * throws is cut off there: monitoring never fails a command.
 */
export const listen = (client: MongoClient, listeners: Partial<MongoClientEvents>): () => void => {
  const added = Object.entries(listeners as Record<keyof MongoClientEvents, Listener>).map(
    ([event, listener]) =>
      [event as keyof MongoClientEvents, (value: never) => {
        try {
          listener(value)
        } catch {
          // Observability must not break storage.
        }
      }] as const
  )
  for (const [event, listener] of added) client.on(event, listener)
  return () => {
    for (const [event, listener] of added) client.off(event, listener)
  }
}
