/**
 * JSON read so that what is acknowledged is what is stored, byte for byte:
 * {@link parseStrict} refuses what `JSON.parse` would silently change — a key
 * given twice (`JSON.parse` keeps the last, a proxy may read the first), a
 * string that is not well-formed Unicode (a lone surrogate, which the MongoDB
 * driver stores as U+FFFD), and a number whose text a double cannot carry
 * exactly (`9007199254740993` would be stored as `…992`).
 */

/** Why a body is refused: what kind of fault, a message, and the JSON path it is about. */
export interface Refusal {
  readonly kind: "malformed" | "duplicate_key" | "not_unicode" | "inexact_number"
  readonly error: string
  readonly path: string
}

/** The first key given twice in one object of `text` (valid JSON), with its object's path. */
const duplicateKey = (text: string): Refusal | undefined => {
  // One entry per open object (its keys so far) or array (undefined); `path` of each.
  const stack: Array<{ readonly keys: Set<string> | undefined; readonly path: string }> = []
  let expectKey = false
  let lastKey = ""
  for (let i = 0; i < text.length; i++) {
    const char = text[i]
    if (char === "\"") {
      let end = i + 1
      while (text[end] !== "\"") end += text[end] === "\\" ? 2 : 1
      if (expectKey) {
        const key = JSON.parse(text.slice(i, end + 1)) as string
        const { keys, path } = stack.at(-1)!
        if (keys!.has(key)) {
          return { kind: "duplicate_key", error: `the key "${key}" is given twice`, path: `${path}.${key}` }
        }
        keys!.add(key)
        lastKey = key
        expectKey = false
      }
      i = end
    } else if (char === "{" || char === "[") {
      const parent = stack.at(-1)
      const path = parent === undefined ? "$" : parent.keys === undefined ? `${parent.path}[]` : `${parent.path}.${lastKey}`
      stack.push({ keys: char === "{" ? new Set() : undefined, path })
      expectKey = char === "{"
    } else if (char === "}" || char === "]") {
      stack.pop()
    } else if (char === ",") {
      expectKey = stack.at(-1)?.keys !== undefined
    }
  }
  return undefined
}

/** A decimal number's value as digits without leading or trailing zeros and a power of ten; exact. */
const decimal = (text: string) => {
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text)
  if (match === null) return undefined
  const digits = `${match[2]}${match[3] ?? ""}`.replace(/^0+/, "")
  const significant = digits.replace(/0+$/, "")
  const exponent = Number(match[4] ?? 0) - (match[3]?.length ?? 0) + (digits.length - significant.length)
  return significant === "" ? "0" : `${match[1]}${significant}e${exponent}`
}

/** Whether the double `value` is exactly the number written `source`. */
const carriedExactly = (source: string, value: number) =>
  Number.isFinite(value) && decimal(source) === decimal(String(value).replace("e+", "e"))

/** The path of the first string (key or value) of `value` that is not well-formed Unicode. */
const illFormed = (value: unknown, path: string): string | undefined => {
  if (typeof value === "string") return value.isWellFormed() ? undefined : path
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = illFormed(item, `${path}[${i}]`)
      if (found !== undefined) return found
    }
  } else if (typeof value === "object" && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      if (!key.isWellFormed()) return `${path}.${key}`
      const found = illFormed(item, `${path}.${key}`)
      if (found !== undefined) return found
    }
  }
  return undefined
}

/**
 * Parses `text` as JSON, or says why not: malformed JSON (`SyntaxError`'s
 * message), a duplicate key, a string that is not well-formed Unicode, or a
 * number a double cannot carry exactly.
 *
 * @example
 * ```ts
 * parseStrict('{"amount":5,"amount":7}')
 * // { refused: { kind: "duplicate_key", error: 'the key "amount" is given twice', path: "$.amount" } }
 * ```
 */
export const parseStrict = (text: string): { readonly value: unknown } | { readonly refused: Refusal } => {
  let inexact: Refusal | undefined
  let value: unknown
  try {
    value = JSON.parse(text, function(key, parsed: unknown, context?: { readonly source?: string }) {
      if (typeof parsed === "number" && inexact === undefined && !carriedExactly(context?.source ?? "", parsed)) {
        inexact = {
          kind: "inexact_number",
          error: `the number ${context?.source} cannot be carried exactly`,
          path: key === "" ? "$" : `$.${key}`
        }
      }
      return parsed
    })
  } catch (error) {
    return { refused: { kind: "malformed", error: error instanceof Error ? error.message : String(error), path: "$" } }
  }
  const duplicate = duplicateKey(text)
  if (duplicate !== undefined) return { refused: duplicate }
  const badString = illFormed(value, "$")
  if (badString !== undefined) {
    return { refused: { kind: "not_unicode", error: "a string is not well-formed Unicode", path: badString } }
  }
  return inexact === undefined ? { value } : { refused: inexact }
}
