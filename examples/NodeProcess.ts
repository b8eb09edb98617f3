/**
 * A node of the example network as a supervised child process. The launcher
 * ({@link launch}) starts each node in a process group of its own with an IPC
 * channel, so that a terminal's Ctrl-C (sent to the launcher's group) reaches
 * the launcher only, which then stops each node once, in order; the node
 * ({@link announce}) tells the launcher where it actually listens. If the
 * launcher dies, the closed channel stops the node (`Main.runMain`).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { once } from "node:events"
import { Data, Effect, Schema } from "effect"
import { Settings } from "../src/index.ts"

/** A {@link Settings.Parser} of the `host:port` of `what`, kept as the text given. */
export const hostPort = (what: string): Settings.Parser<string> => ({
  expected: `host:port of ${what}`,
  parse: (text) => Settings.parseBind(text) === undefined ? undefined : text
})

/** A bound address to connect to: the wildcard hosts become loopback. */
export const reachable = (bound: string): string =>
  bound.replace(/^0\.0\.0\.0:/, "127.0.0.1:").replace(/^\[::\]:/, "[::1]:")

/** Where a node listens: named URLs or addresses, such as `{ http: "http://127.0.0.1:8081" }`. */
export type Endpoints = Readonly<Record<string, string>>

const Ready = Schema.Struct({ ready: Schema.Record(Schema.String, Schema.String) })

/** Tells the launcher, when there is one, that this node is ready and where it listens. */
export const announce = (endpoints: Endpoints): Effect.Effect<void> =>
  Effect.sync(() => {
    if (process.send !== undefined && process.connected) process.send({ ready: endpoints })
  })

/** A node ended on its own (or before it was ready): which, how, and the last error it printed. */
export class NodeExited extends Data.TaggedError("NodeExited")<{
  readonly name: string
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly lastError: string | undefined
}> {
  constructor(fields: {
    readonly name: string
    readonly code: number | null
    readonly signal: NodeJS.Signals | null
    readonly lastError: string | undefined
  }) {
    super(fields)
    this.stack = `${this._tag}: ${this.message}` // one line: where the launcher noticed it says nothing
  }

  override get message(): string {
    const how = this.code === null ? `was killed by ${this.signal}` : `exited with code ${this.code}`
    return `${this.name} ${how}${this.lastError === undefined ? "" : `: ${this.lastError}`}`
  }
}

/** A started node. */
export interface Node {
  readonly name: string
  readonly child: ChildProcess
  /** Where it listens, once it has said so. */
  readonly ready: Effect.Effect<Endpoints, NodeExited>
  /** Fails with {@link NodeExited} when the node ends on its own. */
  readonly exited: Effect.Effect<never, NodeExited>
}

/** The message of a log line: a JSON line's `message`, or a pretty line's text (`[time] LEVEL (#fiber): message`). */
const messageOf = (line: string) => {
  if (line.startsWith("{")) {
    try {
      const { message } = JSON.parse(line) as { readonly message?: unknown }
      if (typeof message === "string") return message
    } catch {
      // Not a JSON log line after all: shown as it is.
    }
  }
  return line.replace(/^\[[^\]]*\] \w+ \(#\d+\): /, "")
}

/** How long a node may take to stop after SIGTERM before it is killed. */
const stopTimeoutMillis = 15_000

const stop = async (child: ChildProcess) => {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, "exit")
  child.kill("SIGTERM")
  const timer = setTimeout(() => process.kill(-child.pid!, "SIGKILL"), stopTimeoutMillis)
  await exited
  clearTimeout(timer)
}

/**
 * Runs `script` with this Node.js as the node `name`, its output written to
 * ours with each line prefixed `[name]`; the scope's release sends it one
 * SIGTERM and waits for its exit (SIGKILL after 15 s).
 */
export const launch = (name: string, script: string, env: Readonly<Record<string, string>>) =>
  Effect.acquireRelease(
    Effect.sync((): Node => {
      const child = spawn(process.execPath, [script], {
        // A node's output is a pipe to the launcher: pretty lines still when the launcher's is a terminal.
        env: { ...(process.stdout.isTTY ? { LOG_FORMAT: "pretty" } : {}), ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe", "ipc"],
        detached: true
      })
      let lastError: string | undefined
      const print = (chunk: Buffer) => {
        for (const line of chunk.toString().trimEnd().split("\n")) {
          if (/\bERROR\b|Error\b/.test(line)) lastError = messageOf(line)
          process.stdout.write(`[${name}] ${line}\n`)
        }
      }
      child.stdout!.on("data", print)
      child.stderr!.on("data", print)
      const closed = once(child, "close")
      const ended = Effect.flatMap(
        Effect.promise(() => closed),
        () => Effect.fail(new NodeExited({ name, code: child.exitCode, signal: child.signalCode, lastError }))
      )
      const message = Effect.callback<Endpoints>((resume) => {
        const onMessage = (value: unknown) => {
          if (Schema.is(Ready)(value)) resume(Effect.succeed(value.ready))
        }
        child.on("message", onMessage)
        return Effect.sync(() => child.off("message", onMessage))
      })
      return { name, child, ready: Effect.raceFirst(message, ended), exited: ended }
    }),
    (node) =>
      Effect.promise(() => stop(node.child)).pipe(
        Effect.andThen(Effect.suspend(() =>
          Effect.log(`${node.name} stopped: ${
            node.child.exitCode === null ? `killed by ${node.child.signalCode}` : `exit code ${node.child.exitCode}`
          }`)
        ))
      )
  )
