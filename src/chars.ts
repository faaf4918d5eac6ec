/**
 * The characters imagegate compares one at a time: UTF-16 code units the rewrite core
 * compares `charCodeAt` results with, and the same ASCII values as bytes, which the
 * streaming path reads on the upstream's raw bytes. Comparing numbers instead of
 * one-character strings keeps the per-character loops free of allocation.
 *
 * Modules with a per-character loop copy what they use into their own constants
 * (`const { TAB } = chars`): V8 (Node 24) reads a module's own constant faster than an
 * imported binding, and on text full of code syntax the rewriter was 13 % slower with
 * the imports read in its loop.
 */

export const TAB = 0x09
export const NEWLINE = 0x0a
export const CR = 0x0d
export const SPACE = 0x20
export const BANG = 0x21
export const QUOTE = 0x22
export const COMMA = 0x2c
export const SLASH = 0x2f
export const DIGIT_0 = 0x30
export const DIGIT_9 = 0x39
export const COLON = 0x3a
export const CAPITAL_M = 0x4d
export const OPEN_BRACKET = 0x5b
export const BACKSLASH = 0x5c
export const CLOSE_BRACKET = 0x5d
export const BACKTICK = 0x60
export const SMALL_U = 0x75
export const OPEN_BRACE = 0x7b
export const CLOSE_BRACE = 0x7d
export const TILDE = 0x7e

/** True for characters that make a following `MEDIA:` part of a longer word. */
export function isWordChar (code: number): boolean {
  return (code >= DIGIT_0 && code <= DIGIT_9) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a) || code === 0x5f
}

/**
 * The value of the four ASCII hex digits at `buf[at]` (a JSON `\uXXXX` escape's), or -1
 * when they are not four hex digits before `to`.
 */
export function hex4 (buf: Uint8Array, at: number, to: number): number {
  if (at + 4 > to) return -1
  let value = 0
  for (let k = at; k < at + 4; k++) {
    const c = (buf[k] as number) | 0x20
    const digit = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1
    if (digit === -1) return -1
    value = value * 16 + digit
  }
  return value
}
