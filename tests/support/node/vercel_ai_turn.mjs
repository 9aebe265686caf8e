// One Vercel AI SDK tool turn against the gateway (an OpenAI-compatible provider): the model calls
// `exec_command`, the tool answers "compat-ok", the model answers. Prints {"text", "steps"}.
// Env: AI_PREFIX (node_modules folder), BASE_URL, API_KEY, MODEL, API ("chat" | "responses"),
// STREAM ("1" for streamText).
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";

const require = createRequire(path.join(process.env.AI_PREFIX, "node_modules", "x.js"));
const load = (name) => import(pathToFileURL(require.resolve(name)).href);
const { generateText, streamText, tool, jsonSchema, stepCountIs } = await load("ai");
const { createOpenAI } = await load("@ai-sdk/openai");

const provider = createOpenAI({ baseURL: process.env.BASE_URL, apiKey: process.env.API_KEY });
const model = process.env.API === "responses"
  ? provider.responses(process.env.MODEL)
  : provider.chat(process.env.MODEL);
const tools = {
  exec_command: tool({
    description: "Run a shell command",
    inputSchema: jsonSchema({
      type: "object",
      properties: { cmd: { type: "string" } },
      required: ["cmd"],
    }),
    execute: async () => "compat-ok",
  }),
};
const options = { model, tools, prompt: "Run the check command.", stopWhen: stepCountIs(3) };
let text, steps;
if (process.env.STREAM === "1") {
  const result = streamText(options);
  text = await result.text;
  steps = (await result.steps).length;
} else {
  const result = await generateText(options);
  text = result.text;
  steps = result.steps.length;
}
console.log(JSON.stringify({ text, steps }));
