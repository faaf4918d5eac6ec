import * as chars from './chars.js'
import { createDataCapture } from './data-capture.js'
import type { DataCapture } from './data-capture.js'
import { parseMarkdownImage, parseMediaTag } from './reference.js'
import type { ParseResult } from './reference.js'
import type { Resolve, Resolved } from './ports.js'

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
  storeDataImage?: ((mime: string, base64: string) => Resolved | undefined) | undefined
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
  /** True while some text is held back. */
  readonly holding: boolean
}

/** Characters that can start a reference, change the code state or end a line. */
const SPECIAL = /[!M`~\\\n\r]/

// Module constants, not imported bindings, for the per-character loop (see chars.ts).
const { BACKSLASH, BACKTICK, BANG, CAPITAL_M, CR, NEWLINE, SPACE, TAB, TILDE, isWordChar } = chars

/**
 * Creates a rewriter in the shape of eventsource-parser's `createParser`: closure state,
 * no I/O, bounded memory.
 *
 * Besides references it tracks just enough CommonMark to leave code alone: fenced code
 * blocks (a run of 3+ backticks or tildes after at most 3 spaces at a line start, closed
 * by a run at least as long) and inline code spans (a run of n backticks closed by a run
 * of exactly n, or abandoned at a blank line). The state depends only on text already
 * seen, so code is never held back; only a possible reference (`![`… or `MEDIA:`…) is.
 * Simplifications against the spec err towards leaving text alone: an unclosed backtick
 * run keeps its paragraph in "code" and a fence's info string is not checked.
 */
export function createRewriter (options: RewriterOptions): Rewriter {
  const { resolve, onRewrite, onCodeReference, storeDataImage, captureGate } = options
  const maxHold = options.maxHold ?? DEFAULT_MAX_HOLD
  const maxDataChars = options.maxDataChars ?? Infinity

  let held = ''
  /** The inline image being collected, if any; its text is held in it, not in `held`. */
  let capture: DataCapture | undefined

  // Code tracking.
  let fenceChar = 0
  let fenceLen = 0
  let span = 0
  let run = 0
  let runChar = 0
  let runAtLineStart = false
  let lineStart = true
  let indent = 0
  let lineBlank = true
  let escaped = false
  let prevWord = false
  // Indented code blocks (CommonMark 4.4): a line indented 4+ spaces after a blank line or
  // another such line. Inside a list the same indent continues a list item instead.
  let lineEntered = false
  let lineCode = false
  let prevLineBlank = true
  let prevLineCode = false
  let inList = false

  /** A run of backticks or tildes ended: open or close code accordingly. */
  function settleRun (): void {
    const atStart = runAtLineStart
    const length = run
    run = 0
    if (fenceChar !== 0) {
      if (runChar === fenceChar && atStart && length >= fenceLen) fenceChar = 0
      return
    }
    if (runChar === BACKTICK) {
      if (span !== 0) {
        if (length === span) span = 0
      } else if (atStart && length >= 3) {
        fenceChar = BACKTICK
        fenceLen = length
      } else {
        span = length
      }
    } else if (span === 0 && atStart && length >= 3) {
      fenceChar = TILDE
      fenceLen = length
    }
  }

  /**
   * The first non-blank character of a line decides whether the line is indented code,
   * and whether a list starts or ends (a list marker, or a paragraph after a blank line).
   */
  function enterLine (c: number): void {
    lineEntered = true
    if (fenceChar !== 0 || span !== 0) return
    if (indent >= 4) {
      if (!inList && (prevLineBlank || prevLineCode)) lineCode = true
      return
    }
    if (c === 0x2d || c === 0x2a || c === 0x2b || (c >= 0x30 && c <= 0x39)) inList = true
    else if (prevLineBlank) inList = false
  }

  /** Advances the code state over one character that is not part of a reference. */
  function advance (c: number): void {
    if (c === NEWLINE) {
      if (run > 0) settleRun()
      // CommonMark 6.1: a code span cannot cross a paragraph break.
      if (lineBlank) span = 0
      prevLineBlank = lineBlank
      prevLineCode = lineCode
      lineCode = false
      lineEntered = false
      lineStart = true
      indent = 0
      lineBlank = true
      escaped = false
      prevWord = false
      return
    }
    if (!lineEntered && c !== SPACE && c !== TAB && c !== CR) enterLine(c)
    if (lineCode) {
      lineStart = false
      lineBlank = false
      prevWord = isWordChar(c)
      return
    }
    if ((c === BACKTICK || c === TILDE) && !escaped) {
      if (run > 0 && runChar === c) {
        run++
      } else {
        if (run > 0) settleRun()
        run = 1
        runChar = c
        runAtLineStart = lineStart && indent <= 3
      }
      lineStart = false
      lineBlank = false
      prevWord = false
      return
    }
    if (run > 0) settleRun()
    if (c === SPACE || c === TAB || c === CR) {
      if (lineStart) indent += c === TAB ? 4 : c === SPACE ? 1 : 0
      escaped = false
      prevWord = false
      return
    }
    lineStart = false
    lineBlank = false
    // Backslash escapes exist only outside code (CommonMark 6.1, 2.4).
    escaped = c === BACKSLASH && !escaped && fenceChar === 0 && span === 0
    prevWord = isWordChar(c)
  }

  function reportInCode (buf: string, i: number, c: number): void {
    const found = c === BANG ? parseMarkdownImage(buf, i, true, maxHold, ANY) : prevWord ? undefined : parseMediaTag(buf, i, true, maxHold, ANY)
    if (found?.kind === 'match') onCodeReference?.(found.dest)
  }

  function parseAt (buf: string, i: number, eof: boolean): ParseResult | undefined {
    const c = buf.charCodeAt(i)
    if (!lineEntered) enterLine(c)
    if (fenceChar !== 0 || span !== 0 || lineCode) {
      if (onCodeReference !== undefined) reportInCode(buf, i, c)
      return undefined
    }
    if (escaped) return undefined
    if (c === BANG) return parseMarkdownImage(buf, i, eof, maxHold, resolve, storeDataImage !== undefined && capture === undefined && captureGate?.busy !== true)
    if (c === CAPITAL_M && !prevWord) return parseMediaTag(buf, i, eof, maxHold, resolve)
    return undefined
  }

  /** Sets the state after a reference that ended at `buf[end - 1]`. */
  function afterReference (buf: string, end: number): void {
    // A reference never spans lines, so the line state is the one it started in.
    lineStart = false
    lineBlank = false
    escaped = false
    prevWord = isWordChar(buf.charCodeAt(end - 1))
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
        afterReference(buf, step.end)
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
        // A pending backtick run ends here and may open a code span that covers this char.
        if (run > 0) settleRun()
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
          afterReference(buf, i)
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

  /**
   * The common delta: no character that can start a reference, open code or end a line.
   * Only the first characters of a line (indent, list marker) need the per-character
   * state; the rest leaves the state as its last character says, so a native regex test
   * replaces the loop over every character.
   */
  function plain (text: string): string {
    let i = 0
    for (; !lineEntered && i < text.length; i++) advance(text.charCodeAt(i))
    if (i < text.length) {
      lineStart = false
      lineBlank = false
      escaped = false
      prevWord = isWordChar(text.charCodeAt(text.length - 1))
    }
    return text
  }

  return {
    push (text: string): string {
      if (held.length === 0 && capture === undefined && run === 0 && !SPECIAL.test(text)) return plain(text)
      return scan(held.length === 0 ? text : held + text, false)
    },
    end (): string {
      return held.length === 0 && capture === undefined ? '' : scan(held, true)
    },
    get holding (): boolean {
      return held.length > 0 || capture !== undefined
    }
  }
}

/** Rewrites a whole text at once (non-streaming answers); equals any streamed split of it. */
export function rewriteText (text: string, options: RewriterOptions): string {
  const rewriter = createRewriter(options)
  return rewriter.push(text) + rewriter.end()
}
