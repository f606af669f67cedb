import { test, describe, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import {
  FormatError,
  KEY_PATTERN,
  detectFormat,
  formatSecrets,
  parseSecrets,
  type ImportFormat,
  type SecretEntry,
} from '../../src/cli/formats/index.js'

// Secret values must never be printed, even by a failing test: comparisons
// go through sameEntries() and assert.ok() with messages that name keys only.

/** Compare entry lists; returns a value-free description of the first difference, or null. */
function diffEntries(actual: SecretEntry[], expected: SecretEntry[]): string | null {
  if (actual.length !== expected.length) return `expected ${expected.length} entries, got ${actual.length}`
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!
    const e = expected[i]!
    if (a.key !== e.key) return `entry #${i + 1}: key mismatch (expected ${e.key})`
    if (typeof a.value !== 'string') return `entry #${i + 1}: value for ${e.key} is not a string`
    if (a.value !== e.value) return `entry #${i + 1}: value mismatch for key ${e.key}`
  }
  return null
}

function assertEntries(actual: SecretEntry[], expected: SecretEntry[]): void {
  const diff = diffEntries(actual, expected)
  assert.ok(diff === null, diff ?? '')
}

/** Run fn, require a FormatError, and check that its message contains none of the forbidden strings. */
function expectFormatError(fn: () => unknown, forbidden: string[] = []): FormatError {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  assert.ok(caught instanceof FormatError, 'expected a FormatError to be thrown')
  assert.equal(caught.code, 'ERR_IMPORT_FORMAT')
  for (const s of forbidden) {
    assert.ok(!caught.message.includes(s), 'error message leaks a secret value')
    assert.ok(!String(caught.stack).includes(s), 'error stack leaks a secret value')
  }
  return caught
}

/**
 * fc.assert prints the counterexample on failure; fc.check lets us report
 * only the seed and path, which are enough to replay the failure locally.
 */
function checkProperty<T>(arb: fc.Arbitrary<T>, predicate: (v: T) => string | null, numRuns = 300): void {
  const result = fc.check(
    fc.property(arb, (v) => {
      const problem = predicate(v)
      if (problem !== null) throw new Error(problem)
    }),
    { numRuns },
  )
  if (result.failed) {
    const reason = result.errorInstance instanceof Error ? result.errorInstance.message : 'predicate failed'
    assert.fail(`property failed (seed ${result.seed}, path "${result.counterexamplePath}"): ${reason}`)
  }
}

// --- arbitraries -----------------------------------------------------------

const keyArb = fc
  .tuple(fc.constantFrom(...'ABCXYZabcxyz_'.split('')), fc.string({ unit: fc.constantFrom(...'ABCZaz019_'.split('')), maxLength: 12 }))
  .map(([head, tail]) => head + tail)

const nastyChar = fc.constantFrom(
  '"',
  "'",
  '\\',
  '\n',
  '\r',
  '\t',
  '$',
  '#',
  ' ',
  '=',
  ':',
  '-',
  '{',
  '}',
  '[',
  ']',
  ',',
  '&',
  '*',
  '!',
  '|',
  '>',
  '%',
  '@',
  '`',
  '?',
  '~',
  '\0',
  '\u0085',
  '\u2028',
  '\u2029',
  '\ufeff',
  'é',
  '🔑',
  'n',
  'r',
  't',
  'x',
  '0',
  'true',
  'null',
  'yes',
  '---',
  '...',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal ${X}, which a dotenv or shell reader must not expand
  '${X}',
  '\\n',
  '\r\n',
)

const valueArb = fc.oneof(
  fc.string({ unit: nastyChar, maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom(
    '',
    ' ',
    '  lead',
    'trail  ',
    '\n',
    '\n\n',
    'true',
    'false',
    'null',
    '~',
    '0123',
    '1e3',
    '0x1F',
    '- x',
    '-----BEGIN FAKE KEY-----\nZmFrZQ==\n-----END FAKE KEY-----\n',
    'a #b',
    '#c',
    "'q'",
    '"d"',
    '\\',
  ),
)

const secretsArb = fc.uniqueArray(fc.record({ key: keyArb, value: valueArb }), {
  selector: (e) => e.key,
  maxLength: 15,
})

// --- property tests ---------------------------------------------------------

describe('round trip (property)', () => {
  test('keys from the arbitrary match KEY_PATTERN', () => {
    checkProperty(keyArb, (k) => (KEY_PATTERN.test(k) ? null : 'generated key does not match KEY_PATTERN'), 200)
  })

  for (const format of ['dotenv', 'json', 'yaml'] as const) {
    test(`parse(format(x)) deep-equals x for ${format}`, () => {
      checkProperty(
        secretsArb,
        (secrets) => {
          const text = formatSecrets(secrets, format)
          let parsed: SecretEntry[]
          try {
            parsed = parseSecrets(text, format)
          } catch (err) {
            return `parse threw: ${err instanceof Error ? err.message : 'unknown error'}`
          }
          return diffEntries(parsed, secrets)
        },
        500,
      )
    })
  }

  test('dotenv output is exactly one line per entry', () => {
    checkProperty(secretsArb, (secrets) => {
      const text = formatSecrets(secrets, 'dotenv')
      const lines = text === '' ? [] : text.slice(0, -1).split('\n')
      return lines.length === secrets.length ? null : 'dotenv output spans extra lines'
    })
  })
})

// --- formatting --------------------------------------------------------------

describe('formatSecrets', () => {
  test('dotenv escapes backslash, double quote, newline and carriage return', () => {
    const out = formatSecrets(
      [
        { key: 'A', value: 'fake\\"x"\n\ry' },
        { key: 'B', value: 'dollar$HOME tab\t #hash' },
        { key: 'C', value: '' },
      ],
      'dotenv',
    )
    assert.ok(out === 'A="fake\\\\\\"x\\"\\n\\ry"\nB="dollar$HOME tab\t #hash"\nC=""\n', 'unexpected dotenv output')
  })

  test('json is a pretty-printed object with a trailing newline', () => {
    const out = formatSecrets(
      [
        { key: 'A', value: 'fake-1' },
        { key: 'B', value: 'x"y' },
      ],
      'json',
    )
    assert.ok(out === '{\n  "A": "fake-1",\n  "B": "x\\"y"\n}\n', 'unexpected json output')
    assert.ok(formatSecrets([], 'json') === '{}\n', 'empty json')
  })

  test('yaml keeps lines of only spaces (regression: seed 522639478)', () => {
    const secrets = [
      { key: 'A', value: ' \n' },
      { key: 'B', value: 'x\n  \ny' },
      { key: 'C', value: '\t\n' },
    ]
    assertEntries(parseSecrets(formatSecrets(secrets, 'yaml'), 'yaml'), secrets)
  })

  test('yaml keeps every value a string', () => {
    const tricky = [
      'true',
      'false',
      'null',
      '~',
      '0123',
      '1e3',
      '0x1F',
      '.inf',
      '- x',
      ': x',
      '? x',
      '#c',
      '&a',
      '*a',
      '!tag',
      '@x',
      '`x',
      '%x',
      '',
      ' lead',
      'trail ',
      'yes',
      'No',
      '12:30',
      '2024-01-01',
      '[a]',
      '{a: 1}',
      "'q'",
      '"d"',
      'line1\nline2',
      'line1\n  indented\n',
      '\n',
      'a\r\nb',
      'end\n\n\n',
      '  both\n  ',
      '|',
      '>',
      'x\ty',
    ]
    const secrets = tricky.map((value, i) => ({ key: `K${i}`, value }))
    const text = formatSecrets(secrets, 'yaml')
    assertEntries(parseSecrets(text, 'yaml'), secrets)
  })

  test('yaml keys that look like other types are quoted and survive', () => {
    const secrets = ['null', 'true', 'y', 'NO', '_1'].map((key) => ({ key, value: 'fake' }))
    assertEntries(parseSecrets(formatSecrets(secrets, 'yaml'), 'yaml'), secrets)
  })

  test('yaml writes multiline values as readable block scalars', () => {
    const out = formatSecrets([{ key: 'PEM', value: '-----BEGIN FAKE-----\nAAAA\n-----END FAKE-----\n' }], 'yaml')
    assert.ok(out.startsWith('PEM: |'), 'multiline value should use a literal block')
  })

  test('shell uses POSIX single quotes', () => {
    const out = formatSecrets(
      [
        { key: 'A', value: "it's fake" },
        { key: 'B', value: '$X `y`' },
      ],
      'shell',
    )
    assert.ok(out === "export A='it'\\''s fake'\nexport B='$X `y`'\n", 'unexpected shell output')
    assert.ok(formatSecrets([], 'shell') === '', 'empty shell')
  })

  test('shell rejects a NUL character without echoing the value', () => {
    const err = expectFormatError(() => formatSecrets([{ key: 'NULLY', value: 'fake\0secret' }], 'shell'), ['fake'])
    assert.match(err.message, /NULLY/)
  })

  test('rejects invalid keys without echoing them', () => {
    for (const key of ['1A', 'A-B', 'A B', '', 'A=B', "A'; rm -rf /; '", 'A\nB']) {
      const err = expectFormatError(() => formatSecrets([{ key, value: 'fake-value' }], 'shell'), ['fake-value'])
      if (key.length > 2) assert.ok(!err.message.includes(key), 'invalid key echoed')
    }
  })

  test('rejects duplicate keys', () => {
    const err = expectFormatError(
      () =>
        formatSecrets(
          [
            { key: 'DUP', value: 'fake-a' },
            { key: 'DUP', value: 'fake-b' },
          ],
          'json',
        ),
      ['fake-a', 'fake-b'],
    )
    assert.match(err.message, /duplicate key DUP/)
  })
})

// --- shell eval ----------------------------------------------------------------

describe('shell format evaluated by sh', () => {
  const shells = ['sh', 'bash', 'dash'].filter((s) => spawnSync(s, ['-c', 'true']).status === 0)

  test('at least sh is available', () => {
    assert.ok(shells.includes('sh'), 'sh must be installed')
  })

  const dir = mkdtempSync(join(tmpdir(), 'coffer-formats-'))
  after(() => rmSync(dir, { recursive: true, force: true }))
  const marker = join(dir, 'pwned')
  const nasty: Record<string, string> = {
    QUOTE: "it's",
    ONLY_QUOTE: "'",
    QUOTES: "''\"\"'\\''",
    NEWLINES: 'a\nb\n',
    ONLY_NEWLINE: '\n',
    TRAILING_NEWLINES: 'x\n\n\n',
    CRLF: 'a\r\nb\r',
    SUBST: `$(touch ${marker})`,
    BACKTICK: `\`touch ${marker}\``,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: literal shell variables that the export must keep from expanding
    VAR: '$HOME ${PATH} $1 $@',
    BACKSLASH: '\\\\n\\',
    GLOB: '* ? [a-z]',
    SPACES: '  lead and trail  ',
    EMPTY: '',
    UNICODE: 'fäke-pässwörd ✓ 🔑',
    DASH_N: '-n',
    TAB: '\t',
    BANG: '!event !!',
    PERCENT: '%s %d %%',
    SEMI: 'a; exit 3',
  }

  for (const shell of shells) {
    test(`eval in ${shell} reproduces each value byte for byte`, () => {
      const file = join(dir, `export-${shell}.sh`)
      writeFileSync(
        file,
        formatSecrets(
          Object.entries(nasty).map(([key, value]) => ({ key, value })),
          'shell',
        ),
      )
      for (const [key, value] of Object.entries(nasty)) {
        const res = spawnSync(shell, ['-c', `eval "$(cat "$1")"; printf %s "$${key}"`, 'sh', file], {
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent-home' },
        })
        assert.equal(res.status, 0, `${shell} exited non-zero for key ${key}`)
        const equal = Buffer.compare(res.stdout, Buffer.from(value, 'utf8')) === 0
        assert.ok(equal, `value mismatch for key ${key}`)
      }
      assert.ok(!existsSync(marker), 'command substitution ran during eval')
    })
  }
})

// --- dotenv parsing --------------------------------------------------------------

describe('parseSecrets dotenv', () => {
  test('comments, blank lines, export prefix, quoting styles', () => {
    const text = [
      '# a comment',
      '',
      '   # indented comment',
      'PLAIN=fake plain value  ',
      'export EXPORTED=fake-exported',
      'SPACED = fake-spaced',
      'INLINE=fake-inline # a comment',
      'HASH=fake#not-a-comment',
      'TABHASH=fake\t# comment',
      'EMPTY=',
      'EMPTY_COMMENT= # only a comment',
      "SINGLE='fake \\n literal $X # kept'",
      'DOUBLE="fake\\nnew\\rcr\\ttab\\\\slash\\"quote"  # trailing comment',
      'UNKNOWN_ESCAPE="fake\\$x\\q"',
      'MULTI="fake line one',
      'line two',
      '  line three"',
      "MULTI_SINGLE='fake a",
      "b'",
      'export=fake-key-named-export',
      'exportFOO=fake-exportfoo',
      'LAST=fake-last',
    ].join('\n')
    assertEntries(parseSecrets(text, 'dotenv'), [
      { key: 'PLAIN', value: 'fake plain value' },
      { key: 'EXPORTED', value: 'fake-exported' },
      { key: 'SPACED', value: 'fake-spaced' },
      { key: 'INLINE', value: 'fake-inline' },
      { key: 'HASH', value: 'fake#not-a-comment' },
      { key: 'TABHASH', value: 'fake' },
      { key: 'EMPTY', value: '' },
      { key: 'EMPTY_COMMENT', value: '' },
      { key: 'SINGLE', value: 'fake \\n literal $X # kept' },
      { key: 'DOUBLE', value: 'fake\nnew\rcr\ttab\\slash"quote' },
      { key: 'UNKNOWN_ESCAPE', value: 'fake\\$x\\q' },
      { key: 'MULTI', value: 'fake line one\nline two\n  line three' },
      { key: 'MULTI_SINGLE', value: 'fake a\nb' },
      { key: 'export', value: 'fake-key-named-export' },
      { key: 'exportFOO', value: 'fake-exportfoo' },
      { key: 'LAST', value: 'fake-last' },
    ])
  })

  test('CRLF line endings and a BOM', () => {
    const text = '\uFEFF# c\r\nA=fake-a\r\nB="fake-b"\r\n\r\nC=\'fake-c\'\r\n'
    assertEntries(parseSecrets(text, 'dotenv'), [
      { key: 'A', value: 'fake-a' },
      { key: 'B', value: 'fake-b' },
      { key: 'C', value: 'fake-c' },
    ])
  })

  test('empty input and comment-only input give no entries', () => {
    assert.equal(parseSecrets('', 'dotenv').length, 0)
    assert.equal(parseSecrets('# nothing\n\n  \n', 'dotenv').length, 0)
  })

  test('duplicate keys are rejected, naming the key and both lines', () => {
    const text = 'A=fake-1\nB="fake\nmulti"\nA=fake-2\n'
    const err = expectFormatError(() => parseSecrets(text, 'dotenv'), ['fake-1', 'fake-2'])
    assert.equal(err.line, 4)
    assert.equal(err.key, 'A')
    assert.match(err.message, /^line 4: duplicate key A \(first defined on line 1\)/)
  })

  test('a line without "=" is rejected without echoing it', () => {
    const err = expectFormatError(() => parseSecrets('A=fake\nhunter2fakeSecret\n', 'dotenv'), ['hunter2fakeSecret'])
    assert.equal(err.line, 2)
    assert.equal(err.key, undefined)
  })

  test('an invalid key is rejected without echoing the line', () => {
    for (const line of ['1KEY=fake-val', 'KEY-NAME=fake-val', '=fake-val', '"KEY"=fake-val', 'ké=fake-val']) {
      const err = expectFormatError(() => parseSecrets(`OK=x\n${line}`, 'dotenv'), ['fake-val'])
      assert.equal(err.line, 2)
      assert.match(err.message, /invalid key|expected KEY=VALUE/)
    }
  })

  test('unterminated quotes name the key and starting line, not the value', () => {
    let err = expectFormatError(() => parseSecrets('A=1\nB="fake-unterminated\nmore\n', 'dotenv'), ['fake-unterminated', 'more'])
    assert.equal(err.line, 2)
    assert.match(err.message, /unterminated double-quoted value for key B/)
    err = expectFormatError(() => parseSecrets("C='fake-open", 'dotenv'), ['fake-open'])
    assert.equal(err.line, 1)
    assert.match(err.message, /unterminated single-quoted value for key C/)
    err = expectFormatError(() => parseSecrets('D="fake-trailing-backslash\\', 'dotenv'), ['fake-trailing'])
    assert.match(err.message, /key D/)
  })

  test('text after a closing quote is rejected', () => {
    const err = expectFormatError(() => parseSecrets('A="fake-q" fake-rest\n', 'dotenv'), ['fake-q', 'fake-rest'])
    assert.equal(err.line, 1)
    assert.equal(err.key, 'A')
  })

  test('line numbers account for multiline values', () => {
    const err = expectFormatError(() => parseSecrets('A="x\ny\nz"\nB=\'p\nq\'\n\n1BAD=v', 'dotenv'))
    assert.equal(err.line, 7)
  })
})

// --- JSON parsing -------------------------------------------------------------------

describe('parseSecrets json', () => {
  test('flat object; numbers and booleans keep their written form', () => {
    const text =
      '{\n  "A": "fake-a",\n  "NUM": 12345678901234567890,\n  "FLOAT": 1.50,\n  "EXP": -2e10,\n  "T": true,\n  "F": false,\n  "U": "\\u00e9\\n"\n}'
    assertEntries(parseSecrets(text, 'json'), [
      { key: 'A', value: 'fake-a' },
      { key: 'NUM', value: '12345678901234567890' },
      { key: 'FLOAT', value: '1.50' },
      { key: 'EXP', value: '-2e10' },
      { key: 'T', value: 'true' },
      { key: 'F', value: 'false' },
      { key: 'U', value: 'é\n' },
    ])
    assert.equal(parseSecrets('{}', 'json').length, 0)
    assert.equal(parseSecrets(' {"A":"x","B":1} ', 'json').length, 2)
  })

  test('nested values, arrays and null are rejected with the key named', () => {
    for (const [body, pattern] of [
      ['{"A":"x",\n"NESTED":{"inner":"fake-inner"}}', /line 2: value for key NESTED must be a scalar, not an object/],
      ['{"ARR":["fake-item"]}', /line 1: value for key ARR must be a scalar, not an array/],
      ['{\n\n"NUL": null}', /line 3: value for key NUL is null/],
    ] as const) {
      const err = expectFormatError(() => parseSecrets(body, 'json'), ['fake-inner', 'fake-item'])
      assert.match(err.message, pattern)
    }
  })

  test('top-level non-objects are rejected', () => {
    for (const body of ['["fake-x"]', '"fake-x"', '42', 'null']) {
      expectFormatError(() => parseSecrets(body, 'json'), ['fake-x'])
    }
  })

  test('invalid JSON does not leak the input', () => {
    for (const body of ['{"A": fake-unquoted-secret}', '{"A": "fake-secret-value",}', '{"A": "fake-secret-value"', '']) {
      const err = expectFormatError(() => parseSecrets(body, 'json'), ['fake-unquoted-secret', 'fake-secret-value'])
      assert.match(err.message, /invalid JSON/)
    }
  })

  test('duplicate keys are rejected with line numbers', () => {
    const err = expectFormatError(() => parseSecrets('{\n "A": "fake-1",\n "B": "x",\n "A": "fake-2"\n}', 'json'), ['fake-1', 'fake-2'])
    assert.equal(err.line, 4)
    assert.match(err.message, /duplicate key A \(first defined on line 2\)/)
  })

  test('invalid keys are rejected without echoing them', () => {
    const err = expectFormatError(() => parseSecrets('{"fake-key-secret": "v"}', 'json'), ['fake-key-secret'])
    assert.match(err.message, /invalid key/)
  })

  test('keys containing escaped quotes and braces do not confuse the scanner', () => {
    const err = expectFormatError(() => parseSecrets('{"A": "}{\\"x\\":", "B\\"": "y"}', 'json'))
    assert.match(err.message, /invalid key/)
    assertEntries(parseSecrets('{"A": "}{\\"x\\":", "B": "y,}"}', 'json'), [
      { key: 'A', value: '}{"x":' },
      { key: 'B', value: 'y,}' },
    ])
  })
})

// --- YAML parsing ----------------------------------------------------------------------

describe('parseSecrets yaml', () => {
  test('scalars become strings as written', () => {
    const text = [
      'A: fake-a',
      'PIN: 0123',
      'NUM: 42',
      'FLOAT: 1.50',
      'T: true',
      'Y: yes',
      'Q: "0123"',
      "S: 'single'",
      'BLOCK: |',
      '  line1',
      '  line2',
      'ANCHOR: &x fake-anchored',
      'ALIAS: *x',
      'TAGGED: !!str 5',
      '# comment',
    ].join('\n')
    assertEntries(parseSecrets(text, 'yaml'), [
      { key: 'A', value: 'fake-a' },
      { key: 'PIN', value: '0123' },
      { key: 'NUM', value: '42' },
      { key: 'FLOAT', value: '1.50' },
      { key: 'T', value: 'true' },
      { key: 'Y', value: 'yes' },
      { key: 'Q', value: '0123' },
      { key: 'S', value: 'single' },
      { key: 'BLOCK', value: 'line1\nline2\n' },
      { key: 'ANCHOR', value: 'fake-anchored' },
      { key: 'ALIAS', value: 'fake-anchored' },
      { key: 'TAGGED', value: '5' },
    ])
  })

  test('empty documents give no entries', () => {
    assert.equal(parseSecrets('', 'yaml').length, 0)
    assert.equal(parseSecrets('# only a comment\n', 'yaml').length, 0)
    assert.equal(parseSecrets('{}\n', 'yaml').length, 0)
    assert.equal(parseSecrets('---\n', 'yaml').length, 0)
  })

  test('nested values and nulls are rejected with key and line', () => {
    let err = expectFormatError(() => parseSecrets('A: x\nNESTED:\n  inner: fake-inner\n', 'yaml'), ['fake-inner'])
    assert.equal(err.line, 2)
    assert.match(err.message, /key NESTED must be a scalar/)
    err = expectFormatError(() => parseSecrets('LIST:\n  - fake-item\n', 'yaml'), ['fake-item'])
    assert.match(err.message, /key LIST must be a scalar/)
    err = expectFormatError(() => parseSecrets('A: x\nB: ~\n', 'yaml'))
    assert.equal(err.line, 2)
    assert.match(err.message, /key B is null/)
    err = expectFormatError(() => parseSecrets('C:\n', 'yaml'))
    assert.match(err.message, /key C is null/)
  })

  test('duplicate keys are rejected with key and line', () => {
    const err = expectFormatError(() => parseSecrets('A: fake-1\nB: x\nA: fake-2\n', 'yaml'), ['fake-1', 'fake-2'])
    assert.equal(err.line, 3)
    assert.match(err.message, /duplicate key A \(first defined on line 1\)/)
  })

  test('top-level non-mappings are rejected', () => {
    for (const body of ['- fake-item\n', 'fake-scalar\n', '[fake-item]']) {
      expectFormatError(() => parseSecrets(body, 'yaml'), ['fake-item', 'fake-scalar'])
    }
  })

  test('syntax errors and multiple documents do not leak the input', () => {
    for (const body of ['A: "fake-unterminated\n', 'A: fake-v\n  bad: [fake-w\n', 'A: fake-doc1\n---\nB: fake-doc2\n', 'A: [fake-x']) {
      const err = expectFormatError(
        () => parseSecrets(body, 'yaml'),
        ['fake-unterminated', 'fake-v', 'fake-w', 'fake-doc1', 'fake-doc2', 'fake-x'],
      )
      assert.match(err.message, /invalid YAML|scalar|mapping/)
    }
  })

  test('invalid keys and binary values are rejected without echoing them', () => {
    let err = expectFormatError(() => parseSecrets('fake-key-secret: v\n', 'yaml'), ['fake-key-secret'])
    assert.match(err.message, /invalid key/)
    err = expectFormatError(() => parseSecrets('? [a, b]\n: v\n', 'yaml'))
    assert.match(err.message, /invalid key/)
    err = expectFormatError(() => parseSecrets('BIN: !!binary ZmFrZQ==\n', 'yaml'), ['ZmFrZQ=='])
    assert.match(err.message, /BIN/)
  })
})

// --- detectFormat ------------------------------------------------------------------

describe('detectFormat', () => {
  const cases: Array<[string, string, ImportFormat]> = [
    ['.env', '{"A":"x"}', 'dotenv'],
    ['prod.env', '', 'dotenv'],
    ['/a/b/.env.local', '', 'dotenv'],
    ['secrets.json', 'A=x', 'json'],
    ['SECRETS.JSON', '', 'json'],
    ['s.yaml', '', 'yaml'],
    ['s.yml', '', 'yaml'],
    ['C:\\dir\\s.yml', '', 'yaml'],
    ['-', '{"A": "x"}', 'json'],
    ['-', '\uFEFF  {"A": "x"}', 'json'],
    ['-', '{A: x}', 'yaml'],
    ['secrets', '# c\nexport A=x\n', 'dotenv'],
    ['secrets', 'A = x', 'dotenv'],
    ['secrets', '# c\n\nA: x\n', 'yaml'],
    ['secrets', '"A": x\n', 'yaml'],
    ['secrets', '---\nA: x\n', 'yaml'],
    ['secrets', 'A:x', 'dotenv'],
    ['secrets', '', 'dotenv'],
  ]
  for (const [name, text, expected] of cases) {
    test(`${JSON.stringify(name)} + ${JSON.stringify(text.slice(0, 12))} → ${expected}`, () => {
      assert.equal(detectFormat(name, text), expected)
    })
  }
})
