// keycap's compatibility test for the official OpenAI Node SDK: the SDK,
// unmodified and configured only by OPENAI_BASE_URL and OPENAI_API_KEY,
// drives every kind of request keycap meters and prints one JSON line per
// case for cmd/keycap/compat_test.go to check.
//
//   node compat.mjs all      every endpoint, each expected to succeed
//   node compat.mjs refuse   one chat and one speech request, each expected
//                            to be refused by keycap's cap
import OpenAI, { toFile } from 'openai';

// Count the HTTP requests the SDK sends (its retries included). The SDK
// takes the global fetch when the client is made; wrapping it observes the
// SDK without configuring it. (The SDK also fetches data: URLs of its own
// to build multipart bodies; those are not requests.)
let attempts = 0;
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  const url = String(input?.url ?? input);
  if (url.startsWith('http:') || url.startsWith('https:')) attempts++;
  return realFetch(input, init);
};

const client = new OpenAI();

async function chat() {
  const r = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'How much is a ticket to London?' }],
    max_completion_tokens: 20,
  });
  const text = r.choices[0]?.message?.content;
  if (!text || !r.usage?.total_tokens) throw new Error('empty completion: ' + JSON.stringify(r));
  return `${r.usage.total_tokens} tokens: ${text}`;
}

async function chatStream() {
  const stream = await client.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'How much is a ticket to Paris?' }],
    max_completion_tokens: 20,
    stream: true,
  });
  let text = '';
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    // keycap asks for usage to meter the stream; a client that did not ask
    // must not see the extra chunk.
    if (chunk.choices.length === 0) throw new Error('got a chunk without choices the client did not ask for: ' + JSON.stringify(chunk));
    text += chunk.choices[0].delta?.content ?? '';
  }
  if (!text) throw new Error('the stream carried no text');
  return `${chunks} chunks: ${text}`;
}

async function responses() {
  const r = await client.responses.create({ model: 'gpt-4o-mini', input: 'Say hello.', max_output_tokens: 50 });
  if (!r.output_text || !r.usage?.total_tokens) throw new Error('empty response: ' + JSON.stringify(r));
  return `${r.usage.total_tokens} tokens: ${r.output_text}`;
}

async function responsesStream() {
  const stream = await client.responses.create({ model: 'gpt-4o-mini', input: 'Say hello again.', max_output_tokens: 50, stream: true });
  let text = '';
  let events = 0;
  let completed = false;
  for await (const ev of stream) {
    events++;
    if (ev.type === 'response.output_text.delta') text += ev.delta;
    if (ev.type === 'response.completed') completed = true;
  }
  if (!completed || !text) throw new Error(`stream incomplete: completed=${completed} text=${JSON.stringify(text)}`);
  return `${events} events: ${text}`;
}

async function embeddings() {
  const r = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'London is $799.' });
  if (r.data.length !== 1 || !r.data[0].embedding?.length) throw new Error('no embedding: ' + JSON.stringify(r));
  return `${r.data[0].embedding.length} dimensions`;
}

async function speech() {
  const r = await client.audio.speech.create({
    model: 'tts-1',
    voice: 'alloy',
    input: 'Welcome to FlightAI. A return ticket to London is $799.',
  });
  const audio = Buffer.from(await r.arrayBuffer());
  if (audio.length === 0) throw new Error('no audio');
  return `${audio.length} bytes of ${r.headers.get('content-type')}`;
}

async function image() {
  const r = await client.images.generate({
    model: 'dall-e-3',
    prompt: 'London at dusk, in the style of a travel poster',
    size: '1024x1024',
    response_format: 'b64_json',
  });
  const png = Buffer.from(r.data?.[0]?.b64_json ?? '', 'base64');
  if (png.length < 24 || png.subarray(0, 8).toString('latin1') !== '\x89PNG\r\n\x1a\n') throw new Error('not a PNG');
  return `PNG ${png.readUInt32BE(16)}x${png.readUInt32BE(20)}`;
}

async function transcription() {
  const r = await client.audio.transcriptions.create({
    model: 'whisper-1',
    file: await toFile(wav(2), 'question.wav', { type: 'audio/wav' }),
  });
  if (!r.text) throw new Error('no text: ' + JSON.stringify(r));
  return r.text;
}

// wav returns that many seconds of 16 kHz mono silence as a WAV file.
function wav(seconds) {
  const rate = 16000;
  const n = rate * 2 * seconds;
  const b = Buffer.alloc(44 + n);
  b.write('RIFF', 0, 'latin1');
  b.writeUInt32LE(36 + n, 4);
  b.write('WAVEfmt ', 8, 'latin1');
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20);
  b.writeUInt16LE(1, 22);
  b.writeUInt32LE(rate, 24);
  b.writeUInt32LE(rate * 2, 28);
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write('data', 36, 'latin1');
  b.writeUInt32LE(n, 40);
  return b;
}

const all = { chat, chat_stream: chatStream, responses, responses_stream: responsesStream, embeddings, speech, image, transcription };
const refuse = { chat, speech };

const mode = process.argv[2] ?? 'all';
const cases = mode === 'refuse' ? refuse : all;
let failed = false;
for (const [name, run] of Object.entries(cases)) {
  const before = attempts;
  const line = { case: name, ok: false, attempts: 0 };
  try {
    line.detail = await run();
    line.ok = true;
  } catch (e) {
    failed = true;
    line.error = String(e?.message ?? e);
    if (e instanceof OpenAI.APIError) {
      line.status = e.status;
      line.code = e.code ?? undefined;
      line.message = e.error?.message ?? undefined;
      line.type = e.constructor.name;
    }
  }
  line.attempts = attempts - before;
  console.log(JSON.stringify(line));
}
if (failed && mode === 'all') process.exitCode = 1;
