import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DataFileError, loadJsonlDocuments, loadJsonlPairs, loadTextDocuments, readLines, streamJsonlDocuments } from '@temper/data';

describe('loaders', () => {
  let dir: string;
  const write = (name: string, content: string | Buffer) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, content);
    return file;
  };
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'temper-data-'))));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('map JSONL fields by name, dotted path and template', () => {
    const file = write(
      'qa.jsonl',
      [
        JSON.stringify({ question: 'What is 2+2?', answer: 4, meta: { turns: [{ content: 'hi' }, { content: 'there' }] } }),
        '',
        JSON.stringify({ question: 'Name a prime.', answer: 'seven', meta: { turns: [{ content: 'a' }, { content: 'b' }] } }),
      ].join('\r\n'),
    );
    expect(loadJsonlPairs(file, { prompt: 'question', response: 'answer' })).toEqual([
      { prompt: 'What is 2+2?', response: '4', source: file },
      { prompt: 'Name a prime.', response: 'seven', source: file },
    ]);
    expect(loadJsonlDocuments(file, { text: 'meta.turns.1.content' }, { source: 'mine' }).map((d) => [d.text, d.source])).toEqual([
      ['there', 'mine'],
      ['b', 'mine'],
    ]);
    expect(loadJsonlDocuments(file, { text: 'Q: {question}\nA: {answer}' })[0].text).toBe('Q: What is 2+2?\nA: 4');
  });

  it('name the file and line of invalid JSON', () => {
    const file = write('bad.jsonl', '{"text": "ok"}\n\n{"text": "broken"\n');
    expect(() => loadJsonlDocuments(file, { text: 'text' })).toThrow(new RegExp(`^${escape(file)}:3: not valid JSON`));
    try {
      loadJsonlDocuments(file, { text: 'text' });
    } catch (err) {
      expect(err).toBeInstanceOf(DataFileError);
      expect((err as DataFileError).file).toBe(file);
      expect((err as DataFileError).line).toBe(3);
    }
  });

  it('name the file, line and field of a missing or non-text field', () => {
    const file = write('fields.jsonl', '{"text": "a"}\n{"body": "b"}\n{"text": {"x": 1}}\n');
    expect(() => loadJsonlDocuments(file, { text: 'text' })).toThrow(`${file}:2: field "text" is missing`);
    const third = write('third.jsonl', '{"text": "a"}\n{"text": ["b"]}\n');
    expect(() => loadJsonlDocuments(third, { text: 'text' })).toThrow(`${third}:2: field "text" is an array, not text`);
    const pairs = write('pairs.jsonl', '{"q": "a", "r": "b"}\n{"q": "c"}\n');
    expect(() => loadJsonlPairs(pairs, { prompt: 'q', response: 'r' })).toThrow(`${pairs}:2: field "r" is missing`);
    expect(() => loadJsonlDocuments(pairs, { text: '{q} then {r}' })).toThrow(`${pairs}:2: field "r" is missing`);
  });

  it('name the line of a record that is not an object, or is empty', () => {
    const file = write('arrays.jsonl', '{"text": "a"}\n[1, 2]\n');
    expect(() => loadJsonlDocuments(file, { text: 'text' })).toThrow(`${file}:2: expected a JSON object, got an array`);
    const empty = write('empty-text.jsonl', '{"text": "a"}\n{"text": ""}\n{"text": "c"}\n');
    expect(() => loadJsonlDocuments(empty, { text: 'text' })).toThrow(`${empty}:2: text from "text" is empty`);
    expect(loadJsonlDocuments(empty, { text: 'text' }, { skipEmpty: true }).map((d) => d.text)).toEqual(['a', 'c']);
  });

  it('name the line of bytes that are not UTF-8', () => {
    const file = write('latin1.txt', Buffer.concat([Buffer.from('one\ntwo\nthr'), Buffer.from([0xe9]), Buffer.from('e\n')]));
    expect(() => loadTextDocuments(file)).toThrow(`${file}:3: not valid UTF-8`);
    const jsonl = write('latin1.jsonl', Buffer.concat([Buffer.from('{"text": "a"}\n{"text": "'), Buffer.from([0xff]), Buffer.from('"}\n')]));
    expect(() => loadJsonlDocuments(jsonl, { text: 'text' })).toThrow(`${jsonl}:2: not valid UTF-8`);
  });

  it('name a file that cannot be read', () => {
    const missing = path.join(dir, 'nope.jsonl');
    expect(() => loadJsonlDocuments(missing, { text: 'text' })).toThrow(`${missing}: cannot read: ENOENT`);
  });

  it('split plain text into paragraphs, lines or one document', () => {
    const file = write('notes.txt', 'First para\nstill first.\n\n  \nSecond 数学 🙂.\r\n\r\nThird.\n');
    expect(loadTextDocuments(file).map((d) => d.text)).toEqual(['First para\nstill first.', 'Second 数学 🙂.', 'Third.']);
    expect(loadTextDocuments(file, { split: 'line' }).map((d) => d.text)).toEqual(['First para', 'still first.', 'Second 数学 🙂.', 'Third.']);
    expect(loadTextDocuments(file, { split: 'file', source: 'notes' })).toEqual([{ text: 'First para\nstill first.\n\n  \nSecond 数学 🙂.\n\nThird.', source: 'notes' }]);
    const blank = write('blank.txt', '\n \n');
    expect(() => loadTextDocuments(blank)).toThrow(`${blank}: holds no text`);
    expect(() => loadTextDocuments(file, { split: 'words' as 'line' })).toThrow(/unknown split "words"/);
  });

  it('read files larger than one chunk, with characters split across chunk boundaries', () => {
    // Records of about 1,000 bytes whose multi-byte characters land on every alignment, enough to
    // cross the 1 MiB read size several times.
    const records: string[] = [];
    for (let i = 0; i < 3000; i++) records.push(JSON.stringify({ id: i, text: `${'é'.repeat(i % 7)}数学🙂 record ${i} `.padEnd(480, 'ü') }));
    const file = write('big.jsonl', records.join('\n') + '\n');
    expect(fs.statSync(file).size).toBeGreaterThan(2 * (1 << 20));
    const docs = loadJsonlDocuments(file, { text: 'text' });
    expect(docs).toHaveLength(3000);
    docs.forEach((d, i) => expect(d.text).toBe(JSON.parse(records[i]).text));
    // The streaming reader yields the same, lazily.
    const it = streamJsonlDocuments(file, { text: 'text' });
    expect(it.next().value).toEqual(docs[0]);
    it.return(undefined);
    // A bad byte far into the file is still reported with its line.
    const bad = write('big-bad.jsonl', Buffer.concat([Buffer.from(records.slice(0, 2500).join('\n') + '\n'), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]));
    expect(() => loadJsonlDocuments(bad, { text: 'text' })).toThrow(`${bad}:2501: not valid UTF-8`);
  });

  it('count lines the same with and without a final newline, and with CRLF', () => {
    const a = write('a.txt', 'x\r\ny\r\nz');
    expect([...readLines(a)]).toEqual([
      { text: 'x', line: 1 },
      { text: 'y', line: 2 },
      { text: 'z', line: 3 },
    ]);
    const b = write('b.txt', 'x\n\nz\n');
    expect([...readLines(b)].map((l) => l.line)).toEqual([1, 2, 3]);
    expect([...readLines(write('empty.txt', ''))]).toEqual([]);
  });
});
