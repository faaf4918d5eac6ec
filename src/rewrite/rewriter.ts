import * as chars from '../chars.js'
import { createCodeState, plainEscapeLength } from './code-state.js'
import { createDataCapture } from './data-capture.js'
import type { DataCapture } from './data-capture.js'
import { parseMarkdownImage, parseMediaTag } from './reference.js'
import type { ParseResult } from './reference.js'
import type { Resolve, Resolved, StoreDataImage } from './ports.js'

/**
 * How many characters a possible reference may be held back before it is released
 * untouched. Real cache paths are far shorter (PATH_MAX is 4096 bytes); the bound caps
 * memory per choice and the delay a stray `![` can cause.
 */
export const DEFAULT_MAX_HOLD = 4096

export interface RewriteEvent {
  dest: string
  resolved: Resolved
}

export interface RewriterOptions {
  resolve: Resolve
  maxHold?: number
  /** Called once per rewritten reference (logging, metrics). */
  onRewrite?: (event: RewriteEvent) => void
  /**
   * Called for a complete reference left alone because it is inside code (metrics).
   * Code is never held back, so a reference in code that is split across pieces is not
   * seen whole and not reported: the count is a lower bound.
   */
  onCodeReference?: (dest: string) => void
  /**
   * Stores an inline `data:` image and returns where it is served, or undefined to leave
   * it as it was. Without it, inline images are ordinary (undeliverable) destinations.
   */
  storeDataImage?: StoreDataImage | undefined
  /** Longest base64 body captured for `storeDataImage`, in characters. */
  maxDataChars?: number
  /**
   * Shared by the rewriters of one response: while one of them captures an inline image,
   * the others treat inline images as plain (undeliverable) destinations, so a response
   * holds at most one image body in memory however many choices it has.
   */
  captureGate?: CaptureGate | undefined
}

export interface CaptureGate {
  busy: boolean
}

/** Accepts every destination: used only to recognise reference syntax inside code. */
const ANY: Resolve = (dest) => ({ url: '', name: dest, kind: 'image' })

/** Incremental rewriter for one text stream (one `choices[].index`). */
export interface Rewriter {
  /** Feed the next piece of text; returns the text that can be sent now. */
  push: (text: string) => string
  /** The text ended: returns whatever was still held, rewritten where complete. */
  end: () => string
  /**
   * Takes `buf[from, to)`, the UTF-8 bytes of a JSON string's content, without decoding
   * them when the text is plain: nothing held and no character that can start a
   * reference, change the code state or end a line (escapes only of characters past
   * ASCII, `\"` and `\/`). Returns true when taken (the text goes out as it came, the
   * state is as after `push`), false when the caller must decode it and `push` it.
   */
  pushPlainBytes: (buf: Uint8Array, from: number, to: number) => boolean
  /** True while some text is held back. */
  readonly holding: boolean
}

// Module constants, not imported bindings, for the per-character loop (see chars.ts).
const { BACKSLASH, BACKTICK, BANG, CAPITAL_M, CR, NEWLINE, TILDE } = chars

/**
 * Characters that can start a reference (`!`, `M`) or change the code state (the rest):
 * text without any goes through `CodeState.advancePlain`. Tested as a regex on text and,
 * on UTF-8 bytes, as a table (a byte of 0x80 or above is never one of them).
 */
const SPECIAL_CODES = [BANG, CAPITAL_M, BACKTICK, TILDE, BACKSLASH, NEWLINE, CR]
const SPECIAL = new RegExp(`[${SPECIAL_CODES.map((c) => `\\u${c.toString(16).padStart(4, '0')}`).join('')}]`)
const SPECIAL_BYTE = new Uint8Array(0x80)
for (const c of SPECIAL_CODES) SPECIAL_BYTE[c] = 1

/**
 * Creates a rewriter in the shape of eventsource-parser's `createParser`: closure state,
 * no I/O, bounded memory.
 *
 * References inside code are left alone; which text is code is tracked by a
 * `CodeState` (code-state.ts). That state depends only on text already seen, so code
 * is never held back; only a possible reference (`![`… or `MEDIA:`…) is.
 */
export function createRewriter (options: RewriterOptions): Rewriter {
  const { resolve, onRewrite, onCodeReference, storeDataImage, captureGate } = options
  const maxHold = options.maxHold ?? DEFAULT_MAX_HOLD
  const maxDataChars = options.maxDataChars ?? Infinity

  let held = ''
  /** The inline image being collected, if any; its text is held in it, not in `held`. */
  let capture: DataCapture | undefined
  // Plain function calls: a method call per character measured 4 % slower on text full
  // of code syntax.
  const { advance, advancePlain, advancePlainBytes, place, afterWord, afterReference } = createCodeState()

  function reportInCode (buf: string, i: number, c: number): void {
    const found = c === BANG ? parseMarkdownImage(buf, i, true, maxHold, ANY) : afterWord() ? undefined : parseMediaTag(buf, i, true, maxHold, ANY)
    if (found?.kind === 'match') onCodeReference?.(found.dest)
  }

  function parseAt (buf: string, i: number, eof: boolean): ParseResult | undefined {
    const c = buf.charCodeAt(i)
    const where = place()
    if (where === 'code') {
      if (onCodeReference !== undefined) reportInCode(buf, i, c)
      return undefined
    }
    if (where === 'escaped') return undefined
    if (c === BANG) return parseMarkdownImage(buf, i, eof, maxHold, resolve, storeDataImage !== undefined && capture === undefined && captureGate?.busy !== true)
    if (c === CAPITAL_M && !afterWord()) return parseMediaTag(buf, i, eof, maxHold, resolve)
    return undefined
  }

  /**
   * Continues the inline image being captured from `buf[i]`. Returns the output and the
   * position scanning resumes at, or undefined when all of `buf` was taken.
   */
  function continueCapture (active: DataCapture, buf: string, i: number, eof: boolean): { out: string, buf: string, next: number } | undefined {
    const step = active.step(buf, i, eof)
    if (step.kind === 'more') return undefined
    capture = undefined
    if (captureGate !== undefined) captureGate.busy = false
    if (step.kind === 'done') {
      const resolved = storeDataImage?.(active.mime, step.base64)
      if (resolved !== undefined) {
        onRewrite?.({ dest: `data:${active.mime}`, resolved })
        afterReference(buf.charCodeAt(step.end - 1))
        return { out: active.lead + resolved.url + step.tail, buf, next: step.end }
      }
      return release(step.original, buf, step.end)
    }
    return release(step.original, buf, step.resume)
  }

  /**
   * An inline image that is not stored goes out as it came: its `!` as plain text (as
   * if the parse had failed there), the rest scanned again like any text.
   */
  function release (original: string, buf: string, resume: number): { out: string, buf: string, next: number } {
    advance(BANG)
    return { out: '!', buf: original.slice(1) + buf.slice(resume), next: 0 }
  }

  function scan (input: string, eof: boolean): string {
    let buf = input
    let out = ''
    let from = 0
    let i = 0
    if (capture !== undefined) {
      const resumed = continueCapture(capture, buf, 0, eof)
      if (resumed === undefined) return ''
      out = resumed.out
      buf = resumed.buf
      from = i = resumed.next
    }
    while (i < buf.length) {
      const c = buf.charCodeAt(i)
      if (c === BANG || c === CAPITAL_M) {
        const result = parseAt(buf, i, eof)
        if (result !== undefined && result.kind === 'need') {
          held = buf.slice(i)
          return out + buf.slice(from, i)
        }
        if (result !== undefined && result.kind === 'match') {
          out += buf.slice(from, i) + result.text
          onRewrite?.({ dest: result.dest, resolved: result.resolved })
          i = result.end
          from = i
          afterReference(buf.charCodeAt(i - 1))
          continue
        }
        if (result !== undefined && result.kind === 'data') {
          out += buf.slice(from, i)
          const active = createDataCapture(buf.slice(i, result.bodyStart), result.destStart - i, result.mime, maxDataChars)
          capture = active
          if (captureGate !== undefined) captureGate.busy = true
          const resumed = continueCapture(active, buf, result.bodyStart, eof)
          if (resumed === undefined) {
            held = ''
            return out
          }
          out += resumed.out
          buf = resumed.buf
          from = i = resumed.next
          continue
        }
      }
      advance(c)
      i++
    }
    held = ''
    return out + buf.slice(from)
  }

  return {
    push (text: string): string {
      if (held.length === 0 && capture === undefined && !SPECIAL.test(text)) {
        // The common delta: no reference can start in it and only the first characters
        // of a line (indent, list marker) touch the code state, so there is no loop over
        // every character and nothing is allocated.
        advancePlain(text)
        return text
      }
      return scan(held.length === 0 ? text : held + text, false)
    },
    pushPlainBytes (buf: Uint8Array, from: number, to: number): boolean {
      if (held.length > 0 || capture !== undefined) return false
      // A delta is a few words: looking at its bytes costs less than decoding them.
      for (let i = from; i < to; i++) {
        const c = buf[i] as number
        if (SPECIAL_BYTE[c] !== 1) continue
        // An escape starts with a backslash: `\u00e9` is an accent, `\u0021` a `!`.
        const length = c === BACKSLASH ? plainEscapeLength(buf, i, to) : 0
        if (length === 0) return false
        i += length - 1
      }
      advancePlainBytes(buf, from, to)
      return true
    },
    end (): string {
      return held.length === 0 && capture === undefined ? '' : scan(held, true)
    },
    get holding (): boolean {
      return held.length > 0 || capture !== undefined
    }
  }
}
