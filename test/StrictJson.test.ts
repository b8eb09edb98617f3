/**
 * examples/StrictJson.ts: JSON that `JSON.parse` would silently change is
 * refused, each case by name; everything else parses as `JSON.parse` does.
 */
import { assert, describe, it } from "vitest"
import { parseStrict } from "../examples/StrictJson.ts"

const refusal = (text: string) => {
  const parsed = parseStrict(text)
  return "refused" in parsed ? parsed.refused : undefined
}

describe("parseStrict", () => {
  it.each([
    ["a key given twice", "{\"amount\":5,\"amount\":7}", "duplicate_key", "$.amount"],
    ["a key given twice with another type first", "{\"amount\":\"x\",\"amount\":5}", "duplicate_key", "$.amount"],
    ["a key given twice in a nested object", "{\"a\":{\"b\":1,\"b\":2}}", "duplicate_key", "$.a.b"],
    ["the same key written with an escape", "{\"ab\":1,\"a\\u0062\":2}", "duplicate_key", "$.ab"],
    ["a lone high surrogate in a value", "{\"region\":\"\\ud800\"}", "not_unicode", "$.region"],
    ["a lone low surrogate in a value", "{\"memo\":\"x\\udc00y\"}", "not_unicode", "$.memo"],
    ["a lone surrogate in a key", "{\"\\ud800\":1}", "not_unicode", "$.\ud800"],
    ["a lone surrogate in an array", "{\"tags\":[\"ok\",\"\\udfff\"]}", "not_unicode", "$.tags[1]"],
    ["an integer past 2^53", "{\"amount\":9007199254740993}", "inexact_number", "$.amount"],
    ["30 significant digits", "{\"amount\":123456789012345678901234567890}", "inexact_number", "$.amount"],
    ["more decimals than a double keeps", "{\"amount\":1.00000000000000000001}", "inexact_number", "$.amount"],
    ["a number too large for a double", "{\"amount\":1e400}", "inexact_number", "$.amount"],
    ["malformed JSON", "{\"amount\":", "malformed", "$"]
  ] as const)("refuses %s", (_name, text, kind, path) => {
    assert.deepInclude(refusal(text), { kind, path })
  })

  it.each([
    ["a well-formed surrogate pair", "{\"memo\":\"\\ud83d\\ude00\"}", { memo: "😀" }],
    ["2^53 itself", "{\"amount\":9007199254740992}", { amount: 9007199254740992 }],
    ["a decimal the shortest form writes alike", "{\"amount\":0.1}", { amount: 0.1 }],
    ["trailing zeros and exponents", "{\"a\":5.0,\"b\":1e2,\"c\":2.50E-1}", { a: 5, b: 100, c: 0.25 }],
    ["the same key in two objects", "{\"a\":{\"k\":1},\"b\":{\"k\":2}}", { a: { k: 1 }, b: { k: 2 } }],
    ["a key-like string in a value", "{\"memo\":\"\\\"amount\\\":1\",\"amount\":1}", { memo: "\"amount\":1", amount: 1 }]
  ])("accepts %s as JSON.parse reads it", (_name, text, expected) => {
    assert.deepStrictEqual(parseStrict(text), { value: expected })
  })
})
