import { COLON, QUOTE } from '../chars.js'
import { isObject } from '../json.js'
import type { JsonObject as Json } from '../json.js'
import type { Rewriter } from '../rewrite/rewriter.js'
import { createContentSlotFinder } from './content-slot.js'
import { expectByte, readString, skipBlanks } from './raw-bytes.js'
import type { ContentSlot } from './content-slot.js'
import type { EventHandler, RawEvent } from './event-stream.js'
import { createFinder, replaceData, replaceStrings } from './raw-json.js'
import { serializeData, serializeEvent } from './serialize.js'

/**
 * Hostile upstreams could name any number of choices; each one holds at most one
 * reference. Choices past this count pass through unrewritten.
 */
export const MAX_CHOICES = 64

/** The fields of a chunk that say which answer it belongs to; provider extras are not copied. */
const IDENTITY = ['id', 'object', 'created', 'model', 'system_fingerprint'] as const

/** The identity of the last chunk, for chunks of released text. */
function identityOf (data: string): Json {
  const identity: Json = {}
  try {
    const parsed: unknown = JSON.parse(data)
    if (isObject(parsed)) for (const key of IDENTITY) if (key in parsed) identity[key] = parsed[key]
  } catch {
    // Not JSON: the fast path takes chunks by their shape, before anything parses them.
  }
  if (identity.object === undefined) identity.object = 'chat.completion.chunk'
  return identity
}

const FINISH_REASON = Buffer.from('"finish_reason"')

const isChoiceIndex = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0

export interface ChatStreamOptions {
  /**
   * Drop events with an `event:` field other than `message` (an upstream's `error` event
   * excepted: it ends the answer and must reach the client). Chat completions streams
   * carry only unnamed chunks; strict clients (the Vercel AI SDK, LibreChat, opencode)
   * parse every event as one and fail on hermes' `event: hermes.tool.progress`.
   */
  dropNamedEvents?: boolean
}

interface ChoiceState {
  rewriter: Rewriter
  finished: boolean
}

/** A choice's answer text in a delta: a string, or Mistral's array of parts (`text` parts only). */
function textParts (delta: unknown): string[] | undefined {
  if (!isObject(delta)) return undefined
  const content = delta.content
  if (typeof content === 'string') return [content]
  if (!Array.isArray(content)) return undefined
  const texts: string[] = []
  for (const part of content) if (isObject(part) && part.type === 'text' && typeof part.text === 'string') texts.push(part.text)
  return texts.length > 0 ? texts : undefined
}

/** Sets the rewritten texts back where `textParts` found them. */
function setTextParts (delta: Json, texts: string[]): void {
  if (typeof delta.content === 'string') {
    delta.content = texts[0]
    return
  }
  let i = 0
  for (const part of delta.content as unknown[]) {
    if (isObject(part) && part.type === 'text' && typeof part.text === 'string') part.text = texts[i++]
  }
}

/**
 * Transforms a `/v1/chat/completions` event stream: the answer text of each
 * `choices[].index` (`delta.content`, a string or Mistral's `text` parts) goes through
 * one rewriter; every other event is forwarded as the upstream sent it, unparsed.
 *
 * Held text is released in a chunk of its own just before the event that ends the
 * choice's text: its finish, a chunk of the choice without text (a tool call), a named
 * event, an error, `[DONE]`, or the end of the stream. A reference never spans them.
 */
export function createChatCompletionsHandler (newRewriter: () => Rewriter, options: ChatStreamOptions = {}): EventHandler {
  const dropNamedEvents = options.dropNamedEvents === true
  const choices = new Map<number, ChoiceState>()
  let holding = 0
  let done = false
  /** The upstream reported an error: its answer ends there, as the upstream meant. */
  let errored = false
  /** The last chunk's data; its identity fields are reused for chunks of released text. */
  let lastChunk = '{}'

  const findContent = createFinder('"content"')
  const findFinish = createFinder(FINISH_REASON.toString())
  // Anchored past a frequent first byte (see createFinder).
  const findError = createFinder('"error"', 2)
  const findDone = createFinder('[DONE]', 1)
  const findName = createFinder('event:', 1)
  const findSlot = createContentSlotFinder()
  const slot: ContentSlot = { index: 0, from: 0, to: 0, listEnd: 0 }

  /** A `"finish_reason"` with a string value in the event; `null` is the common case. */
  function finishSet (event: RawEvent): boolean {
    const { buf, end } = event
    for (let at = findFinish(event); at !== -1 && at < end; at = buf.indexOf(FINISH_REASON, at + 1)) {
      if (buf[skipBlanks(buf, expectByte(buf, at + FINISH_REASON.length, end, COLON), end)] === QUOTE) return true
    }
    return false
  }

  function choiceState (index: number): ChoiceState | undefined {
    let state = choices.get(index)
    if (state === undefined && choices.size < MAX_CHOICES) {
      state = { rewriter: newRewriter(), finished: false }
      choices.set(index, state)
    }
    return state
  }

  function releaseChunk (index: number, text: string): string {
    return serializeData(JSON.stringify({ ...identityOf(lastChunk), choices: [{ index, delta: { content: text }, finish_reason: null }] }))
  }

  /** Pushes text through a choice's rewriter, keeping the count of holding choices. */
  function pass (state: ChoiceState, text: string, final: boolean): string {
    const wasHolding = state.rewriter.holding
    let out = text.length > 0 ? state.rewriter.push(text) : ''
    if (final) out += state.rewriter.end()
    holding += Number(state.rewriter.holding) - Number(wasHolding)
    return out
  }

  function release (index: number, state: ChoiceState, out: string[]): void {
    if (!state.rewriter.holding) return
    const text = pass(state, '', true)
    if (text.length > 0) out.push(releaseChunk(index, text))
  }

  function flushAll (out: string[]): void {
    if (holding === 0) return
    for (const [index, state] of choices) release(index, state, out)
  }

  /** Rewrites the chunk's texts in place; the changed texts, as [before, after], in order. */
  function rewriteChunk (chunk: Json, before: string[]): Array<[string, string]> {
    const changes: Array<[string, string]> = []
    // The caller took only chunks whose `choices` is a list.
    for (const choice of chunk.choices as unknown[]) {
      if (!isObject(choice) || !isChoiceIndex(choice.index)) continue
      const state = choiceState(choice.index)
      if (state === undefined) continue
      const texts = textParts(choice.delta)
      const finishing = choice.finish_reason !== null && choice.finish_reason !== undefined
      if (texts === undefined) {
        // The choice turns to something else (a tool call): its held text goes first.
        release(choice.index, state, before)
        if (finishing) state.finished = true
        continue
      }
      const rewritten = texts.map((text, i) => pass(state, text, finishing && i === texts.length - 1))
      if (finishing) state.finished = true
      let changed = false
      for (let i = 0; i < texts.length; i++) {
        if (rewritten[i] !== texts[i]) {
          changes.push([texts[i] as string, rewritten[i] as string])
          changed = true
        }
      }
      if (changed) setTextParts(choice.delta as Json, rewritten)
    }
    return changes
  }

  /**
   * The common content chunk, taken on its bytes: only its text is decoded and pushed
   * through the choice's rewriter. Text that changes nothing (a few words, no reference)
   * leaves the event as it came; changed text replaces the string literal, every other
   * byte staying as the upstream sent it. Undefined sends the event to the parser.
   */
  function takeContent (event: RawEvent, out: Array<Buffer | string>): 'forward' | 'replaced' | undefined {
    if (!findSlot(event, slot) || findError(event) !== -1) return undefined
    const { buf, start, end } = event
    const state = choiceState(slot.index)
    if (state === undefined) return 'forward'
    // Plain words, the common delta, are not even decoded.
    if (state.rewriter.pushPlainBytes(buf, slot.from + 1, slot.to - 1)) return 'forward'
    const text = readString(buf, slot.from, slot.to)
    if (text === undefined) return undefined
    const rewritten = pass(state, text, false)
    if (rewritten === text) return 'forward'
    // Chunks of released text copy the identity of the chunk that held it.
    if (state.rewriter.holding) lastChunk = buf.toString('utf8', start + 5, end).trim()
    out.push(buf.subarray(start, slot.from), JSON.stringify(rewritten), buf.subarray(slot.to, end))
    return 'replaced'
  }

  return {
    inspect (event, out) {
      if (event.lines === 1) {
        const taken = takeContent(event, out)
        if (taken !== undefined) return taken
      }
      return holding > 0 || findContent(event) !== -1 || findError(event) !== -1 || findDone(event) !== -1 || finishSet(event) ||
        (dropNamedEvents && findName(event) !== -1)
        ? 'decode'
        : 'forward'
    },
    onEvent (event, raw, before) {
      // Named events (hermes.tool.progress …) are not chat chunks; an `error` event
      // (Groq) ends the answer.
      if (event.event !== undefined && event.event !== 'message') {
        flushAll(before)
        if (event.event === 'error') {
          errored = true
          return undefined
        }
        return dropNamedEvents ? '' : undefined
      }
      const data = event.data
      if (data === '[DONE]') {
        flushAll(before)
        done = true
        return undefined
      }
      // The common content chunk was taken on its bytes (`takeContent`); what comes here
      // is read whole, and forwarded untouched when it is not JSON.
      let chunk: unknown
      try {
        chunk = JSON.parse(data)
      } catch {
        return undefined
      }
      if (!isObject(chunk)) return undefined
      // OpenRouter reports a failure mid-stream as a chunk with a top-level `error`.
      if (chunk.error !== undefined && chunk.error !== null) {
        flushAll(before)
        errored = true
        return undefined
      }
      lastChunk = data
      if (!Array.isArray(chunk.choices) || chunk.choices.length === 0) {
        flushAll(before)
        return undefined
      }
      const changes = rewriteChunk(chunk, before)
      if (changes.length === 0) return undefined
      const inPlace = replaceStrings(data, 'content', changes) ?? replaceStrings(data, 'text', changes)
      const next = inPlace ?? JSON.stringify(chunk)
      return replaceData(raw, data, next) ?? serializeEvent({ ...event, data: next })
    },
    flush: flushAll,
    get done () {
      return done
    },
    get complete () {
      if (errored) return true
      if (choices.size === 0) return false
      for (const state of choices.values()) if (!state.finished) return false
      return true
    }
  }
}
