/**
 * The ports of the rewriting core: the callbacks the pure, synchronous rewrite code
 * receives from the I/O shell, and the values they return. The core only calls them;
 * the shell (src/delivery.ts, over the file resolver and the data store) implements
 * them, and tests pass small fakes.
 */
import type { FileKind } from '../files/file-types.js'
import type { Rejection } from '../files/resolver.js'

/**
 * What the place a reference was written in can show: `'image'` (a markdown image) only
 * images, `'media'` (a `MEDIA:` tag) images, audio, video and documents.
 */
export type Accept = 'image' | 'media'

/** What the shell's resolver returns for a deliverable destination. */
export interface Resolved {
  /** Absolute URL the browser loads. */
  url: string
  /** Display name, used as link text for `MEDIA:` tags. */
  name: string
  /** Images become markdown images; audio, video and documents links. */
  kind: FileKind
}

/** Resolves a destination the model wrote, or undefined to leave the reference as it is. */
export type Resolve = (dest: string, accept: Accept) => Resolved | undefined

/** A reference left alone: why, and the file name it ends in (never the whole path). */
interface Rejected {
  reason: Rejection
  fileName: string
}

export type OnReject = (rejected: Rejected) => void

/** A `Resolve` that tells `onReject` about each reference it leaves alone (one per request). */
export type ResolveFor = (onReject: OnReject) => Resolve

/**
 * Stores an inline `data:` image (its MIME type and base64 body) and returns where it is
 * served, or undefined to leave it as it was.
 */
export type StoreDataImage = (mime: string, base64: string) => Resolved | undefined
