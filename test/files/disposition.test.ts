import t from 'tap'
import { attachmentDisposition } from '../../src/files/disposition.js'

t.test('the file name in both forms, nothing that could split or end the header', async (t) => {
  const table: Array<[name: string, expected: string]> = [
    ['report.pdf', 'attachment; filename="report.pdf"; filename*=UTF-8\'\'report.pdf'],
    ['Q3 "final".csv', 'attachment; filename="Q3 _final_.csv"; filename*=UTF-8\'\'Q3%20%22final%22.csv'],
    ['a\\b;c=d.txt', 'attachment; filename="a_b;c=d.txt"; filename*=UTF-8\'\'a%5Cb%3Bc%3Dd.txt'],
    ['résumé 🍎.docx', 'attachment; filename="r_sum_ __.docx"; filename*=UTF-8\'\'r%C3%A9sum%C3%A9%20%F0%9F%8D%8E.docx'],
    ["it's (1)*!.md", 'attachment; filename="it\'s (1)*!.md"; filename*=UTF-8\'\'it%27s%20%281%29%2A!.md'],
    ['line\r\nSet-Cookie: x.txt', 'attachment; filename="line__Set-Cookie: x.txt"; filename*=UTF-8\'\'line%0D%0ASet-Cookie%3A%20x.txt']
  ]
  for (const [name, expected] of table) {
    const header = attachmentDisposition(name)
    t.equal(header, expected, JSON.stringify(name))
    t.match(header, /^[\x20-\x7e]+$/, `${JSON.stringify(name)}: printable ASCII only`)
  }
})
