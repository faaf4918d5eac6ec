import t from 'tap'
import { parseDestination, type Destination } from '../../src/files/destination.js'

const HOME = '/home/u'

const at = (path: string, basename: string): Destination => ({ kind: 'path', path, basename })
const byName = (basename: string): Destination => ({ kind: 'basename', basename })
const no = (reason: 'not-a-path' | 'hostile'): Destination => ({ kind: 'rejected', reason })

const table: Array<[dest: string, expected: Destination]> = [
  ['/root/.hermes/cache/images/x.png', at('/root/.hermes/cache/images/x.png', 'x.png')],
  ['//srv///cache/./x.png', at('/srv/cache/x.png', 'x.png')],
  ['/x.png', at('/x.png', 'x.png')],
  ['~/pics/x.png', at('/home/u/pics/x.png', 'x.png')],
  ['file:///srv/a%20b%20(1).png', at('/srv/a b (1).png', 'a b (1).png')],
  ['file://localhost/srv/x.png', at('/srv/x.png', 'x.png')],
  ['file://LOCALHOST/srv/x.png', at('/srv/x.png', 'x.png')],
  ['file:/srv/x.png', at('/srv/x.png', 'x.png')],
  ['File:///srv/x.png?v=2#frag', at('/srv/x.png', 'x.png')],
  ['file:///srv/%F0%9F%8D%8E.png', at('/srv/🍎.png', '🍎.png')],
  ['file:///C:/Users/u/x.png', byName('x.png')],
  ['file://C:/Users/u/x.png', byName('x.png')],
  ['file:///c:%5CUsers%5Cx.png', byName('x.png')],
  ['C:\\Users\\u\\x.png', byName('x.png')],
  ['C:/Users/u/x.png', byName('x.png')],
  ['d:\\x.png', byName('x.png')],
  ['C:\\a/b\\x.png', byName('x.png')],

  ['', no('not-a-path')],
  ['x.png', no('not-a-path')],
  ['./x.png', no('not-a-path')],
  ['../../x.png', no('not-a-path')],
  ['~', no('not-a-path')],
  ['~u/x.png', no('not-a-path')],
  ['http://h/x.png', no('not-a-path')],
  ['HTTPS://h/x.png', no('not-a-path')],
  ['data:image/png;base64,AAA', no('not-a-path')],
  ['blob:http://h/uuid', no('not-a-path')],
  ['javascript:alert(1)//x.png', no('not-a-path')],
  ['file://server/share/x.png', no('not-a-path')],
  ['file:x.png', no('not-a-path')],
  ['file://', no('not-a-path')],
  ['file:///', no('hostile')],
  ['\\\\server\\share\\x.png', no('not-a-path')],
  ['C:x.png', no('not-a-path')],
  [' /x.png', no('not-a-path')],

  ['/srv/../etc/x.png', no('hostile')],
  ['/root/.hermes/cache/images/../../../etc/x.png', no('hostile')],
  ['~/../x.png', no('hostile')],
  ['file:///srv/%2e%2e/x.png', no('hostile')],
  ['file:///srv/%2E%2E%2Fx.png', no('hostile')],
  ['file:///srv/%zz.png', no('hostile')],
  ['file:///srv/x.png%00.txt', no('hostile')],
  ['file:///srv/x%0a.png', no('hostile')],
  ['C:\\Users\\..\\x.png', no('hostile')],
  ['C:\\Users\\', no('hostile')],
  ['C:\\Users\\.secret.png', no('hostile')],
  ['/srv/x.png\u0000.txt', no('hostile')],
  ['/srv/x\r\n.png', no('hostile')],
  ['/srv/x\u007f.png', no('hostile')],
  ['/srv/x\u009b.png', no('hostile')],
  ['/srv/x\udfff.png', no('hostile')],
  ['/srv/a\\b.png', no('hostile')],
  ['/srv/', no('hostile')],
  ['/', no('hostile')],
  ['/srv/.', no('hostile')],
  ['/srv/..', no('hostile')],
  ['/srv/.hidden.png', no('hostile')]
]

t.test('parseDestination', async (t) => {
  for (const [dest, expected] of table) {
    t.same(parseDestination(dest, HOME), expected, `${JSON.stringify(dest)}`)
  }
})
