/**
 * Signed image links: `/images/<name>?sig=<mac>`. Only names imagegate itself wrote into
 * an answer carry a valid signature, so knowing (or guessing) a file name in the cache
 * is not enough to fetch it.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { ensureWritableFolder } from './writable-folder.js'

/** 128 bits of HMAC-SHA256: past any online guessing, and short enough for a link. */
export const SIGNATURE_BYTES = 16
/** base64url length of `SIGNATURE_BYTES`. */
const SIGNATURE_LENGTH = Math.ceil(SIGNATURE_BYTES * 4 / 3)
const KEY_FILE = 'signing-key'
const KEY_BYTES = 32
const HEX_KEY = /^[0-9a-f]{64}$/

export interface Signer {
  /** The signature of an encoded name, base64url. */
  sign: (name: string) => string
  /** Constant-time check of a signature given by a client (any value, any length). */
  verify: (name: string, signature: unknown) => boolean
}

export function createSigner (key: Buffer | string): Signer {
  const secret = typeof key === 'string' ? Buffer.from(key, 'utf8') : key
  const mac = (name: string): Buffer => createHmac('sha256', secret).update(name, 'utf8').digest().subarray(0, SIGNATURE_BYTES)
  return {
    sign: (name) => mac(name).toString('base64url'),
    verify (name, signature) {
      if (typeof signature !== 'string' || signature.length !== SIGNATURE_LENGTH) return false
      const given = Buffer.from(signature, 'base64url')
      // base64url decoding ignores stray characters; the round trip must be exact.
      if (given.length !== SIGNATURE_BYTES || given.toString('base64url') !== signature) return false
      return timingSafeEqual(given, mac(name))
    }
  }
}

/**
 * The signing key kept in `stateDir`: read when present, else generated and written with
 * mode 0600 (`wx`, so two instances starting together agree on one key). Links stored in
 * Open WebUI's chat history stay valid across restarts only because this key does.
 */
export function loadOrCreateKey (stateDir: string): { key: Buffer, created: boolean } {
  const file = path.join(stateDir, KEY_FILE)
  const existing = readKey(file)
  if (existing !== undefined) return { key: existing, created: false }
  ensureWritableFolder(stateDir)
  const key = randomBytes(KEY_BYTES)
  try {
    fs.writeFileSync(file, key.toString('hex') + '\n', { mode: 0o600, flag: 'wx' })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    const raced = readKey(file)
    if (raced === undefined) throw new Error(`${file} is not a signing key`)
    return { key: raced, created: false }
  }
  return { key, created: true }
}

function readKey (file: string): Buffer | undefined {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8').trim()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  if (!HEX_KEY.test(text)) throw new Error(`${file} does not hold a signing key (64 hex characters); remove it to generate a new one`)
  return Buffer.from(text, 'hex')
}
