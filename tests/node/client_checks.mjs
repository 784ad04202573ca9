// The official `openai` npm client against a running router, unchanged.
//
//   node client_checks.mjs BASE_URL [CHECK ...]   runs the checks (all by default)
//   node client_checks.mjs --list                 prints the check names
//
// BASE_URL is the router's OpenAI base, e.g. http://127.0.0.1:10000/v1 (or MODEL_ROUTER_BASE_URL).
// The router must serve pool `default` (simulated models answering "tok1 tok2 ..." with
// output_tokens=4), model `limited` (always 429) and model `gone` (refuses connections),
// as tests/e2e/test_node_sdk.py sets up. Prints one line per check, `ok NAME` or
// `FAIL NAME: why`, and exits 1 if any check failed (2 on bad usage or a missing install).

const TOKENS = 'tok1 tok2 tok3 tok4 ';
const USER = [{ role: 'user', content: 'hi' }];
const CHAT_TOOLS = [{
  type: 'function',
  function: {
    name: 'lookup',
    description: 'Look a word up',
    parameters: { type: 'object', properties: { text: { type: 'string' } } },
  },
}];
const RESPONSES_TOOLS = [{
  type: 'function',
  name: 'lookup',
  description: 'Look a word up',
  parameters: { type: 'object', properties: { text: { type: 'string' } } },
}];
/** Longest a single check may take: a hang is a failure, never a stuck test run. */
const CHECK_TIMEOUT_MS = 30000;

class CheckFailed extends Error {}

function expect(condition, what) {
  if (!condition) throw new CheckFailed(what);
}

function equal(actual, wanted, what) {
  const a = JSON.stringify(actual);
  const w = JSON.stringify(wanted);
  expect(a === w, `${what}: got ${a}, wanted ${w}`);
}

/** Runs `call`, which must fail with `errorClass`, `status`, `code` and a message holding `text`. */
async function expectError(call, errorClass, status, code, text) {
  let err;
  try {
    await call();
  } catch (e) {
    err = e;
  }
  expect(err !== undefined, `no error raised, wanted ${errorClass.name}`);
  expect(err instanceof errorClass,
    `raised ${err?.constructor?.name}: ${err?.message}, wanted ${errorClass.name}`);
  equal(err.status, status, 'status');
  const body = err.error; // the "error" object of the answer
  expect(body && typeof body.message === 'string' && body.message && body.type,
    `error body not OpenAI-shaped: ${JSON.stringify(body)}`);
  expect(err.message.includes(body.message), `message ${JSON.stringify(err.message)} lacks the router's`);
  if (code !== null) {
    equal(err.code, code, 'code');
    expect(body.message.includes(text), `message ${JSON.stringify(body.message)} lacks ${JSON.stringify(text)}`);
  }
  return err;
}

function checks(OpenAI, toFile, c) {
  return {
    async chat_completion_plain() {
      const answer = await c.chat.completions.create({ model: 'default', messages: USER });
      equal(answer.choices[0].message.content, TOKENS, 'content');
      equal(answer.choices[0].finish_reason, 'stop', 'finish_reason');
      equal(answer.usage.completion_tokens, 4, 'usage.completion_tokens');
    },

    async chat_completion_streamed_with_usage() {
      const stream = await c.chat.completions.create({
        model: 'default', messages: USER, stream: true, stream_options: { include_usage: true },
      });
      let text = '';
      let usage = null;
      for await (const chunk of stream) {
        if (chunk.choices.length) text += chunk.choices[0].delta.content ?? '';
        if (chunk.usage) usage = chunk.usage;
      }
      equal(text, TOKENS, 'streamed text');
      equal(usage?.completion_tokens, 4, 'usage.completion_tokens');
    },

    async legacy_completion_plain() {
      const answer = await c.completions.create({ model: 'default', prompt: 'say something' });
      equal(answer.choices[0].text, TOKENS, 'text');
      equal(answer.usage.completion_tokens, 4, 'usage.completion_tokens');
    },

    async legacy_completion_streamed_with_usage() {
      const stream = await c.completions.create({
        model: 'default', prompt: 'say something', stream: true,
        stream_options: { include_usage: true },
      });
      let text = '';
      let usage = null;
      for await (const chunk of stream) {
        if (chunk.choices.length) text += chunk.choices[0].text;
        if (chunk.usage) usage = chunk.usage;
      }
      equal(text, TOKENS, 'streamed text');
      equal(usage?.completion_tokens, 4, 'usage.completion_tokens');
    },

    async models_list_and_retrieve() {
      const ids = [];
      for await (const model of c.models.list()) ids.push(model.id);
      equal(ids, ['m1', 'm2', 'm3', 'limited', 'gone', 'default', 'default:latency', 'default:throughput'],
        'model ids');
      equal((await c.models.retrieve('DEFAULT:latency')).id, 'DEFAULT:latency', 'retrieved id');
    },

    async chat_tool_call_plain_and_streamed() {
      const plain = await c.chat.completions.create({
        model: 'default', messages: USER, tools: CHAT_TOOLS, tool_choice: 'required',
      });
      const call = plain.choices[0].message.tool_calls?.[0];
      equal(plain.choices[0].finish_reason, 'tool_calls', 'finish_reason');
      equal(call?.function.name, 'lookup', 'function name');
      equal(JSON.parse(call.function.arguments), { text: TOKENS }, 'arguments');

      const stream = await c.chat.completions.create({
        model: 'default', messages: USER, tools: CHAT_TOOLS, stream: true,
        tool_choice: { type: 'function', function: { name: 'lookup' } },
      });
      const names = [];
      let args = '';
      let finish = null;
      for await (const chunk of stream) {
        for (const piece of chunk.choices[0]?.delta.tool_calls ?? []) {
          if (piece.function?.name) names.push(piece.function.name);
          args += piece.function?.arguments ?? '';
        }
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      equal(names, ['lookup'], 'streamed function names');
      equal(JSON.parse(args), { text: TOKENS }, 'streamed arguments');
      equal(finish, 'tool_calls', 'streamed finish_reason');
    },

    async chat_with_tools_on_auto_answers_text() {
      const answer = await c.chat.completions.create({
        model: 'default', messages: USER, tools: CHAT_TOOLS, tool_choice: 'auto',
      });
      equal(answer.choices[0].message.content, TOKENS, 'content');
    },

    async responses_plain() {
      const answer = await c.responses.create({ model: 'default', input: 'say something' });
      equal(answer.output_text, TOKENS, 'output_text');
      equal(answer.status, 'completed', 'status');
      equal(answer.usage.output_tokens, 4, 'usage.output_tokens');
    },

    async responses_streamed() {
      const stream = await c.responses.create({ model: 'default', input: 'say something', stream: true });
      const events = [];
      for await (const event of stream) events.push(event);
      equal(events[0]?.type, 'response.created', 'first event');
      const last = events.at(-1);
      equal(last?.type, 'response.completed', 'last event');
      const text = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
      equal(text, TOKENS, 'delta text');
      equal(events.map((e) => e.sequence_number), events.map((_, i) => i), 'sequence numbers');
      equal(last.response.usage.output_tokens, 4, 'usage.output_tokens');
    },

    async responses_stream_helper_collects_the_final_response() {
      const stream = c.responses.stream({ model: 'default', input: 'say something' });
      let deltas = '';
      stream.on('response.output_text.delta', (e) => { deltas += e.delta; });
      const final = await stream.finalResponse();
      equal(deltas, TOKENS, 'delta text');
      equal(final.output_text, TOKENS, 'final output_text');
    },

    async responses_tool_call() {
      const answer = await c.responses.create({
        model: 'default', input: 'look it up', tools: RESPONSES_TOOLS, tool_choice: 'required',
      });
      const item = answer.output[0];
      equal(item.type, 'function_call', 'output item type');
      equal(item.name, 'lookup', 'function name');
      equal(JSON.parse(item.arguments), { text: TOKENS }, 'arguments');
    },

    async embeddings_through_a_pool() {
      // The client asks for base64 by default and decodes it itself.
      const packed = await c.embeddings.create({ model: 'default', input: ['a', 'b c'] });
      equal(packed.data.length, 2, 'vectors');
      for (const d of packed.data) {
        equal(d.embedding.length, 8, 'dimensions');
        const norm = Math.sqrt(d.embedding.reduce((s, x) => s + x * x, 0));
        expect(Math.abs(norm - 1) < 1e-3, `not a unit vector: ${norm}`);
      }
      const floats = await c.embeddings.create({ model: 'default', input: 'a', encoding_format: 'float' });
      floats.data[0].embedding.forEach((x, i) => {
        expect(Math.abs(x - packed.data[0].embedding[i]) < 1e-6, `float ${i} differs from base64`);
      });
    },

    async unknown_model_is_not_found() {
      await expectError(() => c.chat.completions.create({ model: 'nope', messages: USER }),
        OpenAI.NotFoundError, 404, 'model_not_found', 'nope');
    },

    async unknown_model_streamed_is_not_found() {
      await expectError(() => c.chat.completions.create({ model: 'nope', messages: USER, stream: true }),
        OpenAI.NotFoundError, 404, 'model_not_found', 'nope');
    },

    async unknown_strategy_is_not_found() {
      await expectError(() => c.responses.create({ model: 'default:cheapest', input: 'hi' }),
        OpenAI.NotFoundError, 404, 'model_not_found', 'latency');
    },

    async body_without_model_is_bad_request() {
      const err = await expectError(() => c.post('/chat/completions', { body: { messages: USER } }),
        OpenAI.BadRequestError, 400, 'missing_model', 'model');
      equal(err.param, 'model', 'param');
    },

    async model_not_a_string_is_bad_request() {
      await expectError(() => c.post('/embeddings', { body: { model: 7, input: 'x' } }),
        OpenAI.BadRequestError, 400, 'invalid_type', 'model');
    },

    async invalid_json_is_bad_request() {
      await expectError(
        () => c.post('/chat/completions', { body: '{"model":', headers: { 'content-type': 'application/json' } }),
        OpenAI.BadRequestError, 400, 'invalid_json', 'JSON');
    },

    async audio_is_not_routed() {
      await expectError(() => c.audio.speech.create({ model: 'default', voice: 'alloy', input: 'hi' }),
        OpenAI.NotFoundError, 404, 'unknown_url', '/v1/audio/speech');
    },

    async files_are_not_routed() {
      await expectError(async () => { for await (const f of c.files.list()) void f; },
        OpenAI.NotFoundError, 404, 'unknown_url', '/v1/files');
      // Answered before the body is read: small and large uploads still get the error.
      for (const size of [3000, 5000000]) {
        const file = await toFile(Buffer.alloc(size, 'x'), 'a.jsonl');
        await expectError(() => c.files.create({ file, purpose: 'batch' }),
          OpenAI.NotFoundError, 404, 'unknown_url', '/v1/files');
      }
    },

    async wrong_method_is_405() {
      await expectError(() => c.get('/chat/completions'),
        OpenAI.APIError, 405, 'method_not_allowed', 'POST');
    },

    async rate_limited_model_is_rate_limit_error() {
      await expectError(() => c.chat.completions.create({ model: 'limited', messages: USER }),
        OpenAI.RateLimitError, 429, 'rate_limit_exceeded', 'Rate limit reached for limited');
    },

    async unreachable_model_is_internal_server_error() {
      const err = await expectError(() => c.chat.completions.create({ model: 'gone', messages: USER }),
        OpenAI.InternalServerError, 503, null, null);
      expect(err.code && err.error.type === 'upstream_error', `Envoy's reply not rewritten: ${JSON.stringify(err.error)}`);
    },
  };
}

function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new CheckFailed(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function main(argv) {
  if (argv[0] === '--list') {
    console.log(Object.keys(checks(null, null, null)).join('\n'));
    return 0;
  }
  const [baseURL = process.env.MODEL_ROUTER_BASE_URL, ...wanted] = argv;
  if (!baseURL) {
    console.error('usage: node client_checks.mjs BASE_URL [CHECK ...] | --list');
    return 2;
  }
  let OpenAI;
  let toFile;
  try {
    ({ default: OpenAI, toFile } = await import('openai'));
  } catch (e) {
    console.error(`cannot load the openai package (run \`make deps\`, which runs npm ci in tests/node): ${e.message}`);
    return 2;
  }
  const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 20000 });
  const all = checks(OpenAI, toFile, client);
  const unknown = wanted.filter((name) => !(name in all));
  if (unknown.length) {
    console.error(`unknown checks: ${unknown.join(', ')}; see --list`);
    return 2;
  }
  let failed = 0;
  for (const name of wanted.length ? wanted : Object.keys(all)) {
    try {
      await withTimeout(all[name](), CHECK_TIMEOUT_MS);
      console.log(`ok ${name}`);
    } catch (e) {
      failed += 1;
      const why = e instanceof CheckFailed ? e.message : `${e?.constructor?.name}: ${e?.message}`;
      console.log(`FAIL ${name}: ${why.replaceAll('\n', ' ')}`);
    }
  }
  return failed ? 1 : 0;
}

// Exit explicitly: a check that timed out may still hold an open connection.
process.exit(await main(process.argv.slice(2)));
