/** Polling for what appears a little later (a collector's files, a scrape). */
import { setTimeout as sleep } from "node:timers/promises"

/** `probe()` every 100 ms until it returns something, for at most `timeoutMs`; fails naming `what`. */
export const eventually = async <A>(
  what: string,
  probe: () => Promise<A | undefined>,
  timeoutMs = 10_000
): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const found = await probe()
    if (found !== undefined) return found
    await sleep(100)
  }
  throw new Error(`not within ${timeoutMs / 1000} s: ${what}`)
}
