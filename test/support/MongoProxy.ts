/**
 * A TCP proxy on loopback between the MongoDB driver and a server, reading the wire protocol just enough to make the
 * faults the driver must survive:
 *
 * - {@link MongoProxy.dropNextReply}: the next `insert` (or other command) reaches the server, but its reply is
 *   replaced by a dropped connection: the write landed and the driver cannot know it.
 * - {@link MongoProxy.hang}: a host that accepts connections and never answers. New connections are accepted and
 *   left silent; open connections that carried an application command are destroyed, so the next operation must open
 *   a new one. Connections that only carried `hello` (the driver's monitor) keep working: the server still looks up,
 *   and only the connect timeout can end the wait.
 * - `replicaSet`: every `hello` reply gains `setName`, `hosts` and `me`, so the driver takes a standalone server
 *   (FerretDB) for a replica-set primary and uses retryable writes (FerretDB accepts `lsid`/`txnNumber` but does not
 *   recognise a retried write: its retry of a landed insert answers duplicate key). Connect with
 *   `directConnection=true` ({@link MongoProxy.uri} adds it).
 */
import { type AddressInfo, connect, createServer, type Socket } from "node:net"
import { Effect, type Scope } from "effect"
import { BSON } from "mongodb"

/** What the proxy saw a client send. */
export interface Sent {
  /** The proxy's number of the client connection, from 1. */
  readonly connection: number
  /** The command's name (the first key of an `OP_MSG` body), or `handshake` for a legacy `OP_QUERY`. */
  readonly command: string
}

/** A running proxy. */
export interface MongoProxy {
  /** The port on 127.0.0.1. */
  readonly port: number
  /** A connection string to the proxy for `database`, with `directConnection=true`. */
  readonly uri: (database: string) => string
  /** Every command clients sent, in order. */
  readonly sent: () => ReadonlyArray<Sent>
  /** How many client connections were accepted, and how many of them {@link hang} left silent. */
  readonly connections: () => { readonly accepted: number; readonly silenced: number }
  /** Forwards the next `command` to the server, then drops its connection instead of forwarding the reply. */
  readonly dropNextReply: (command: string) => void
  /** Replies dropped so far by {@link dropNextReply}. */
  readonly dropped: () => number
  /** From now on, a host that swallows connections (see the module's description). */
  readonly hang: () => void
  /** Forwards new connections again. */
  readonly resume: () => void
  /** Stops listening and destroys every connection. */
  readonly close: () => Promise<void>
}

/** Options of {@link start}. */
export interface Options {
  /** Present the server as the primary of this replica set (see the module's description). */
  readonly replicaSet?: string
}

const opQuery = 2004
const opMsg = 2013
const opReply = 1

/** Commands of the driver's handshake and monitor, not of the application. */
const monitoring = new Set(["hello", "isMaster", "ismaster", "handshake"])

/** The first key of the BSON document at `offset`. */
const firstKey = (message: Buffer, offset: number): string => {
  const end = message.indexOf(0, offset + 5)
  return message.toString("utf8", offset + 5, end)
}

/** The command a client message carries. */
const commandOf = (message: Buffer): string => {
  const opCode = message.readInt32LE(12)
  if (opCode === opMsg && message[20] === 0) return firstKey(message, 21)
  return opCode === opQuery ? "handshake" : `opCode ${opCode}`
}

/** Where the reply document of a server message starts, if it has one. */
const replyOffset = (message: Buffer): number | undefined => {
  const opCode = message.readInt32LE(12)
  if (opCode === opMsg && message[20] === 0) return 21
  if (opCode === opReply && message.readInt32LE(32) > 0) return 36
  return undefined
}

/** `message` with `fields` appended to its reply document when that is a `hello` reply (it has `maxWireVersion`). */
const announce = (message: Buffer, fields: BSON.Document): Buffer => {
  const offset = replyOffset(message)
  if (offset === undefined) return message
  const length = message.readInt32LE(offset)
  const reply = BSON.deserialize(message.subarray(offset, offset + length), { promoteValues: false })
  if (!("maxWireVersion" in reply)) return message
  const added = BSON.serialize(fields)
  const document = Buffer.concat([
    message.subarray(offset, offset + length - 1),
    added.subarray(4, added.length - 1),
    Buffer.from([0])
  ])
  document.writeInt32LE(document.length, 0)
  // An OP_MSG checksum would no longer match: the flag is cleared and the checksum left out.
  const checksummed = message.readInt32LE(12) === opMsg && (message.readUInt32LE(16) & 1) === 1
  const head = Buffer.from(message.subarray(0, offset))
  if (checksummed) head.writeUInt32LE(head.readUInt32LE(16) & ~1, 16)
  const tail = message.subarray(offset + length, checksummed ? message.length - 4 : message.length)
  const rewritten = Buffer.concat([head, document, tail])
  rewritten.writeInt32LE(rewritten.length, 0)
  return rewritten
}

/** Splits a byte stream into wire-protocol messages. */
const framer = (onMessage: (message: Buffer) => void) => {
  let pending: Buffer = Buffer.alloc(0)
  return (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
    while (pending.length >= 4 && pending.length >= pending.readInt32LE(0)) {
      const length = pending.readInt32LE(0)
      onMessage(pending.subarray(0, length))
      pending = pending.subarray(length)
    }
  }
}

/** Starts a proxy on 127.0.0.1 (a free port) to the server of `target`, a `mongodb://host:port/…` URI. */
export const start = async (target: string, options: Options = {}): Promise<MongoProxy> => {
  const [host = "127.0.0.1", port = "27017"] = new URL(target).host.split(":")
  const sent: Array<Sent> = []
  const sockets = new Set<Socket>()
  const application = new Set<Socket>()
  let accepted = 0
  let silenced = 0
  let dropped = 0
  let hanging = false
  let dropCommand: string | undefined
  let address = ""

  const server = createServer((client) => {
    accepted += 1
    const connection = accepted
    sockets.add(client)
    client.on("close", () => {
      sockets.delete(client)
      application.delete(client)
    })
    client.on("error", () => client.destroy())
    if (hanging) {
      silenced += 1
      client.resume()
      return
    }
    const upstream = connect(Number(port), host)
    sockets.add(upstream)
    const cut = () => {
      client.destroy()
      upstream.destroy()
    }
    upstream.on("close", () => {
      sockets.delete(upstream)
      client.destroy()
    })
    upstream.on("error", cut)
    client.on("close", () => upstream.destroy())
    let dropReplyTo: number | undefined
    client.on(
      "data",
      framer((message) => {
        const command = commandOf(message)
        sent.push({ connection, command })
        if (!monitoring.has(command)) application.add(client)
        if (command === dropCommand) {
          dropCommand = undefined
          dropReplyTo = message.readInt32LE(4)
        }
        upstream.write(message)
      })
    )
    upstream.on(
      "data",
      framer((message) => {
        if (dropReplyTo !== undefined && message.readInt32LE(8) === dropReplyTo) {
          dropped += 1
          cut()
          return
        }
        const fields = { setName: options.replicaSet, hosts: [address], me: address }
        client.write(options.replicaSet === undefined ? message : announce(message, fields))
      })
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  const listening = (server.address() as AddressInfo).port
  address = `127.0.0.1:${listening}`

  return {
    port: listening,
    uri: (database) => `mongodb://${address}/${database}?directConnection=true`,
    sent: () => [...sent],
    connections: () => ({ accepted, silenced }),
    dropNextReply: (command) => {
      dropCommand = command
    },
    dropped: () => dropped,
    hang: () => {
      hanging = true
      for (const socket of application) socket.destroy()
    },
    resume: () => {
      hanging = false
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
}

/** {@link start} in a scope: the proxy is closed when the scope closes. */
export const make = (target: string, options: Options = {}): Effect.Effect<MongoProxy, never, Scope.Scope> =>
  Effect.acquireRelease(Effect.promise(() => start(target, options)), (proxy) => Effect.promise(proxy.close))
