/** @internal */

/**
 * Makes `error`'s stack its one-line `_tag: message`, so that a program's
 * runner prints one line: where in the library the error was made tells a
 * user nothing, what to change does.
 */
export const oneLine = <E extends Error & { readonly _tag: string }>(error: E): E => {
  error.stack = `${error._tag}: ${error.message}`
  return error
}
