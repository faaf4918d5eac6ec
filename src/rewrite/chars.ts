/**
 * UTF-16 code units the rewrite core compares `charCodeAt` results with. Comparing
 * numbers instead of one-character strings keeps the per-character loops free of
 * allocation.
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
export const CAPITAL_M = 0x4d
export const BACKSLASH = 0x5c
export const BACKTICK = 0x60
export const TILDE = 0x7e

/** True for characters that make a following `MEDIA:` part of a longer word. */
export function isWordChar (code: number): boolean {
  return (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a) || code === 0x5f
}
