// The OpenAI Agents SDK's own runner, with a Model of ours that returns
// scripted tool calls (no model service), calling function tools guarded
// by writ.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Agent, type Model, type ModelRequest, type ModelResponse, Runner, setTracingDisabled, tool, Usage } from '@openai/agents';
import { z } from 'zod';

import { agentsErrorFunction } from '../src/index.js';
import { startServer } from './harness.js';
import { checkTrace, script, setup, tools } from './scenario.js';

/** A model that answers each turn with the next scripted tool call, then "done". */
class ScriptedModel implements Model {
  readonly requests: ModelRequest[] = [];
  #turn = 0;

  async getResponse(request: ModelRequest): Promise<ModelResponse> {
    this.requests.push(request);
    const call = script[this.#turn];
    this.#turn++;
    if (call === undefined) {
      return {
        usage: new Usage(),
        output: [{ type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'done' }] }],
      };
    }
    return {
      usage: new Usage(),
      output: [{ type: 'function_call', callId: `call_${this.#turn}`, name: call.tool, arguments: JSON.stringify(call.input), status: 'completed' }],
    };
  }

  getStreamedResponse(): AsyncIterable<never> {
    throw new Error('this test does not stream');
  }
}

test('OpenAI Agents SDK: the runner calls guarded function tools: allowed, denied, step-up approved', async (t) => {
  const srv = await startServer(t);
  if (!srv) return;
  setTracingDisabled(true);
  const { task, writ } = await setup(srv);
  const { search, sendMail, ran } = tools(writ);
  const model = new ScriptedModel();
  const agent = new Agent({
    name: 'kb',
    instructions: 'Answer from the knowledge base.',
    model,
    tools: [
      tool({
        name: 'search',
        description: 'Search the knowledge base',
        parameters: z.object({ space: z.string(), q: z.string() }),
        execute: search,
        errorFunction: agentsErrorFunction,
      }),
      tool({
        name: 'send_mail',
        description: 'Send a mail',
        parameters: z.object({ to: z.string(), body: z.string() }),
        execute: sendMail,
        errorFunction: agentsErrorFunction,
      }),
    ],
  });

  const [result, approvalId] = await Promise.all([
    new Runner().run(agent, 'How did Q3 go? Mail the CFO, and check salaries.', { maxTurns: 10 }),
    srv.decideStepUp(task, 'approve', 'salaries, once'),
  ]);

  assert.equal(result.finalOutput, 'done');
  assert.deepEqual(ran, ['search public/q3', 'search private/salaries']);
  // What the model read back of each call.
  const last = model.requests.at(-1)!.input as any[];
  const outputs = last.filter((i) => i.type === 'function_call_result').map((i) => JSON.stringify(i.output));
  assert.equal(outputs.length, 3);
  assert.match(outputs[0], /q3: 3 documents/);
  assert.match(outputs[1], /writ denied mail\.send \(send mailto:cfo@example\.org\): .*tool is not in the task scope.*\(decision dec_/);
  assert.match(outputs[2], /salaries: 3 documents/);

  await checkTrace(srv, task, approvalId);
});
