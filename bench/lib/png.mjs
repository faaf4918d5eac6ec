import fs from 'node:fs'
import { crc32, deflateSync } from 'node:zlib'

function chunk (type, data) {
  const length = Buffer.alloc(4)
  length.writeUInt32BE(data.length)
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(body))
  return Buffer.concat([length, body, crc])
}

/**
 * Writes a valid RGB PNG of about `bytes` bytes. The pixels are pseudo-random so deflate
 * cannot shrink them: the file size is what the benchmark says it is.
 */
export function writePng (file, bytes) {
  const side = Math.ceil(Math.sqrt(bytes / 3))
  const row = 1 + side * 3
  const raw = Buffer.alloc(row * side)
  let seed = 0x2545f491
  for (let y = 0; y < side; y++) {
    raw[y * row] = 0 // filter type: none
    for (let x = 1; x < row; x++) {
      seed ^= seed << 13
      seed ^= seed >>> 17
      seed ^= seed << 5
      raw[y * row + x] = seed & 0xff
    }
  }
  const header = Buffer.alloc(13)
  header.writeUInt32BE(side, 0)
  header.writeUInt32BE(side, 4)
  header[8] = 8 // bit depth
  header[9] = 2 // colour type: RGB
  const png = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw, { level: 1 })),
    chunk('IEND', Buffer.alloc(0))
  ])
  fs.writeFileSync(file, png)
  return png.length
}
