// The Vercel AI SDK's own agent loop (generateText with tools and several
// steps) driven by its mock language model, calling tools guarded by writ.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { generateText, stepCountIs, tool } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import { z } from 'zod';

import { startServer } from './harness.js';
import { checkTrace, script, setup, tools } from './scenario.js';

const usage = {
  inputTokens: { total: 10, noCache: 10, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: 5, text: 5, reasoning: 0 },
};

test('AI SDK: generateText calls guarded tools: allowed, denied, step-up approved', async (t) => {
  const srv = await startServer(t);
  if (!srv) return;
  const { task, writ } = await setup(srv);
  const { search, sendMail, ran } = tools(writ);

  const model = new MockLanguageModelV3({
    doGenerate: [
      ...script.map((c, i) => ({
        content: [{ type: 'tool-call' as const, toolCallId: `call_${i}`, toolName: c.tool, input: JSON.stringify(c.input) }],
        finishReason: { unified: 'tool-calls' as const, raw: 'tool_calls' },
        usage,
        warnings: [],
      })),
      { content: [{ type: 'text' as const, text: 'done' }], finishReason: { unified: 'stop' as const, raw: 'stop' }, usage, warnings: [] },
    ],
  });

  const [result, approvalId] = await Promise.all([
    generateText({
      model,
      prompt: 'How did Q3 go? Mail the CFO, and check salaries.',
      tools: {
        search: tool({
          description: 'Search the knowledge base',
          inputSchema: z.object({ space: z.string(), q: z.string() }),
          execute: search,
        }),
        send_mail: tool({
          description: 'Send a mail',
          inputSchema: z.object({ to: z.string(), body: z.string() }),
          execute: sendMail,
        }),
      },
      stopWhen: stepCountIs(10),
    }),
    srv.decideStepUp(task, 'approve', 'salaries, once'),
  ]);

  assert.equal(result.text, 'done');
  assert.deepEqual(ran, ['search public/q3', 'search private/salaries']);
  // What the model was shown of each call: the results, and writ's denial
  // with its reasons and decision ID.
  const parts = result.steps.flatMap((s) => s.content);
  const results = parts.filter((p) => p.type === 'tool-result').map((p: any) => p.output);
  assert.deepEqual(results, [{ hits: ['q3: 3 documents'] }, { hits: ['salaries: 3 documents'] }]);
  const errors = parts.filter((p) => p.type === 'tool-error').map((p: any) => String(p.error?.message ?? p.error));
  assert.equal(errors.length, 1);
  assert.match(errors[0], /writ denied mail\.send \(send mailto:cfo@example\.org\): .*tool is not in the task scope.*\(decision dec_/);
  const lastPrompt = JSON.stringify(model.doGenerateCalls.at(-1)!.prompt);
  assert.match(lastPrompt, /writ denied mail\.send/, 'the denial reached the model');

  await checkTrace(srv, task, approvalId);
});
