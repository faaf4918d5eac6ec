/**
 * Which rendering of an image a request gets: the file itself, or a compact WebP/AVIF
 * one. Pure: the image route asks it with the request's `Accept` header and the file's
 * extension.
 *
 * Only an explicit `image/webp` or `image/avif` counts, as image CDNs do: browsers name
 * them in every `<img>` request, while a bare `*\/*` comes from curl or an SDK, which
 * must get the file that was linked.
 */

import type { CompactImages } from '../config/options.js'
import { COMPACTABLE_EXTENSIONS } from './file-types.js'

/** What `--compact-images` asks for; `avif` means AVIF where accepted, WebP elsewhere. */
export type CompactSetting = CompactImages

/** A compact format imagegate encodes to. */
export type CompactFormat = Exclude<CompactImages, 'off'>

const MEDIA_TYPES: ReadonlyMap<string, CompactFormat> = new Map([['image/webp', 'webp'], ['image/avif', 'avif']])

// `q=0` means "not acceptable" (RFC 9110 12.4.2).
const ZERO_QUALITY = /^q=0(?:\.0{0,3})?$/i

/** The compact formats an `Accept` header names explicitly with a quality above 0. */
export function acceptedFormats (accept: string | undefined): ReadonlySet<CompactFormat> {
  const formats = new Set<CompactFormat>()
  if (accept === undefined) return formats
  for (const range of accept.split(',')) {
    const [type = '', ...params] = range.split(';').map((part) => part.trim())
    const format = MEDIA_TYPES.get(type.toLowerCase())
    if (format === undefined) continue
    if (params.some((param) => ZERO_QUALITY.test(param.replace(/\s+/g, '')))) continue
    formats.add(format)
  }
  return formats
}

export interface FormatRequest {
  setting: CompactSetting
  /** The request's `Accept` header. */
  accept: string | undefined
  /** The file's lowercased extension, without the dot. */
  extension: string
  /** `?original` was asked for. */
  original: boolean
}

/** The compact format to send, or undefined for the file itself. */
export function chooseFormat ({ setting, accept, extension, original }: FormatRequest): CompactFormat | undefined {
  if (setting === 'off' || original || !COMPACTABLE_EXTENSIONS.has(extension)) return undefined
  const accepted = acceptedFormats(accept)
  if (setting === 'avif' && accepted.has('avif')) return 'avif'
  return accepted.has('webp') ? 'webp' : undefined
}
