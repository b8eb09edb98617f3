/**
 * A small YAML writer for the generated Prometheus files: mappings, sequences,
 * numbers, booleans and strings, with strings quoted only where YAML needs it
 * (single quotes, so PromQL's double quotes stay readable).
 */

/** A value {@link stringify} can write. */
export type Yaml = string | number | boolean | null | ReadonlyArray<Yaml> | { readonly [key: string]: Yaml | undefined }

const plain = /^(?:[A-Za-z_](?:[\w./:-]*[\w./-])?|\d+[smhdwy])$/
const reserved = /^(?:true|false|yes|no|on|off|null|~)$/i

const scalar = (value: string | number | boolean | null): string =>
  typeof value !== "string" ? String(value) : plain.test(value) && !reserved.test(value) ? value :
  `'${value.replaceAll("'", "''")}'`

const isScalar = (value: Yaml): value is string | number | boolean | null =>
  value === null || typeof value !== "object"

const lines = (value: Yaml, indent: string): Array<string> => {
  if (isScalar(value)) return [scalar(value)]
  if (Array.isArray(value)) {
    if (value.length === 0) return ["[]"]
    return value.flatMap((item: Yaml) => {
      const [first = "", ...rest] = isScalar(item) ? [scalar(item)] : lines(item, `${indent}  `)
      return [`${indent}- ${first.trimStart()}`, ...rest]
    })
  }
  const entries = Object.entries(value).filter((entry): entry is [string, Yaml] => entry[1] !== undefined)
  if (entries.length === 0) return ["{}"]
  return entries.flatMap(([key, item]) => {
    const nested = !isScalar(item) && (Array.isArray(item) ? item.length > 0 : Object.keys(item).length > 0)
    return nested ? [`${indent}${scalar(key)}:`, ...lines(item, `${indent}  `)] :
      [`${indent}${scalar(key)}: ${lines(item, indent)[0]}`]
  })
}

/** `value` as a YAML document, `header` lines first as comments. */
export const stringify = (value: Yaml, header: ReadonlyArray<string> = []): string =>
  [...header.map((line) => `# ${line}`), ...lines(value, "")].join("\n") + "\n"
