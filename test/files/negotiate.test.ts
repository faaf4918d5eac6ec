import t from 'tap'
import { acceptedFormats, chooseFormat } from '../../src/files/negotiate.js'

// What real clients send for an <img> or a plain request.
const CHROME = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8'
const FIREFOX = 'image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5'
const SAFARI_16 = 'image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5'
const OLD_SAFARI = 'image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5'

t.test('only explicit image/webp and image/avif with a quality above 0 count', async (t) => {
  const table: Array<[accept: string | undefined, expected: string[]]> = [
    [CHROME, ['avif', 'webp']],
    [FIREFOX, ['avif', 'webp']],
    [SAFARI_16, ['webp', 'avif']],
    [OLD_SAFARI, []],
    ['*/*', []],
    ['image/*', []],
    [undefined, []],
    ['', []],
    ['IMAGE/WEBP', ['webp']],
    [' image/webp ; q=0.5 ', ['webp']],
    ['image/webp;q=0', []],
    ['image/webp; q = 0.000', []],
    ['image/webp;q=0.001', ['webp']],
    ['image/webpx,image/avif2,text/image/webp', []]
  ]
  for (const [accept, expected] of table) t.same([...acceptedFormats(accept)], expected, JSON.stringify(accept))
})

t.test('the format sent: by setting, Accept, extension and ?original', async (t) => {
  const table: Array<[setting: 'webp' | 'avif' | 'off', accept: string | undefined, extension: string, original: boolean, expected: string | undefined]> = [
    ['webp', CHROME, 'png', false, 'webp'],
    ['webp', CHROME, 'jpg', false, 'webp'],
    ['webp', CHROME, 'jpeg', false, 'webp'],
    ['webp', CHROME, 'gif', false, 'webp'],
    ['avif', CHROME, 'png', false, 'avif'],
    ['avif', 'image/webp', 'png', false, 'webp'],
    ['avif', OLD_SAFARI, 'png', false, undefined],
    ['webp', 'image/avif', 'png', false, undefined],
    ['webp', '*/*', 'png', false, undefined],
    ['webp', CHROME, 'png', true, undefined],
    ['off', CHROME, 'png', false, undefined],
    ['webp', CHROME, 'webp', false, undefined],
    ['webp', CHROME, 'avif', false, undefined],
    ['webp', CHROME, 'svg', false, undefined],
    ['webp', CHROME, 'bmp', false, undefined],
    ['webp', CHROME, 'pdf', false, undefined]
  ]
  for (const [setting, accept, extension, original, expected] of table) {
    t.equal(chooseFormat({ setting, accept, extension, original }), expected, `${setting}, ${String(accept)}, .${extension}${original ? ', ?original' : ''}`)
  }
})
