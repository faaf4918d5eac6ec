import { fileNameOf } from '../delivery.js'
import type { ReferenceOutcome } from '../metrics.js'
import type { OnReject, ResolveFor, StoreDataImage } from './ports.js'
import { createRewriter } from './rewriter.js'
import type { CaptureGate, Rewriter } from './rewriter.js'

/** References in one answer: rewritten, and left as the model wrote them. */
export interface ReferenceTally {
  rewritten: number
  left: number
}

/** Where a session's debug lines go (a request's logger). */
interface SessionLog {
  debug: (fields: Record<string, unknown>, message: string) => void
}

export interface RewriteSessionOptions {
  /** A resolver that tells `onReject` about each reference it leaves alone. */
  resolveFor: ResolveFor
  storeDataImage?: StoreDataImage | undefined
  /** Longest inline image body captured, in base64 characters. */
  maxDataChars?: number
  log: SessionLog
  /** Each reference counted (metrics). */
  onReference?: (outcome: ReferenceOutcome) => void
}

/** Everything one answer rewrites, and what it counts. */
export interface RewriteSession {
  /** A rewriter for one text stream of the answer (a choice, a content part). */
  newRewriter: () => Rewriter
  /**
   * Rewrites a whole text. `repeat` marks text the answer already rewrote piece by
   * piece (the Responses API's `*.done` events), whose references are neither counted
   * nor logged again.
   */
  rewriteWhole: (text: string, options?: { repeat?: boolean }) => string
  readonly tally: Readonly<ReferenceTally>
}

const NOTHING: OnReject = () => {}

/**
 * One session per request: it decides which rewriter counts and logs a reference, holds
 * the answer's one inline image capture (however many choices it has), and keeps the
 * answer's tally for its request line.
 */
export function createRewriteSession (options: RewriteSessionOptions): RewriteSession {
  const { log, onReference } = options
  const tally: ReferenceTally = { rewritten: 0, left: 0 }
  const gate: CaptureGate = { busy: false }

  const counted = options.resolveFor(({ reason, fileName }) => {
    onReference?.(reason)
    tally.left++
    log.debug({ reason, name: fileName }, 'reference left alone')
  })
  const uncounted = options.resolveFor(NOTHING)
  const shared = {
    storeDataImage: options.storeDataImage,
    ...(options.maxDataChars !== undefined ? { maxDataChars: options.maxDataChars } : {})
  }

  function newRewriter (repeat = false): Rewriter {
    if (repeat) return createRewriter({ ...shared, resolve: uncounted, captureGate: gate })
    return createRewriter({
      ...shared,
      resolve: counted,
      captureGate: gate,
      onRewrite ({ resolved }) {
        onReference?.('rewritten')
        tally.rewritten++
        log.debug({ name: resolved.name }, 'reference rewritten')
      },
      onCodeReference (dest) {
        onReference?.('in-code')
        tally.left++
        log.debug({ reason: 'in-code', name: fileNameOf(dest) }, 'reference left alone')
      }
    })
  }

  return {
    newRewriter: () => newRewriter(false),
    rewriteWhole (text, { repeat = false } = {}) {
      const rewriter = newRewriter(repeat)
      return rewriter.push(text) + rewriter.end()
    },
    tally
  }
}
