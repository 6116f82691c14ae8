// The components a spec can name. Built-ins are registered at load; users add their own
// with registerRewardComponent (in code) or as plugin modules the scorer loads at start
// (loadRewardPlugins), so a new reward needs no change to the service.
import * as path from 'node:path';
import { loadSandboxedPlugin } from './plugin-sandbox';
import { accuracy } from './components/accuracy';
import { choiceGuard } from './components/choice-guard';
import { cosineLength } from './components/cosine-length';
import { countdown } from './components/countdown';
import { format } from './components/format';
import { language } from './components/language';
import { overlong } from './components/overlong';
import { environment } from './components/environment';
import { reasoning } from './components/reasoning';
import { repetition } from './components/repetition';
import { RewardComponent } from './types';

// Components are stored type-erased; each one's prepare/score agree with each other.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyRewardComponent = RewardComponent<any>;

export class RewardRegistry {
  private readonly components = new Map<string, AnyRewardComponent>();

  register(component: AnyRewardComponent): void {
    if (!/^[a-z][a-z0-9_.-]*$/.test(component.name)) {
      throw new Error(`reward component name "${component.name}" must be lower case letters, digits, _ . -`);
    }
    if (typeof component.score !== 'function') throw new Error(`reward component "${component.name}" has no score function`);
    if (this.components.has(component.name)) throw new Error(`reward component "${component.name}" is already registered`);
    this.components.set(component.name, component);
  }

  get(name: string): AnyRewardComponent | undefined {
    return this.components.get(name);
  }

  names(): string[] {
    return [...this.components.keys()];
  }

  list(): AnyRewardComponent[] {
    return [...this.components.values()];
  }
}

export const builtinComponents: AnyRewardComponent[] = [accuracy, format, countdown, cosineLength, overlong, repetition, language, environment, reasoning, choiceGuard];

export function createRegistry(withBuiltins = true): RewardRegistry {
  const r = new RewardRegistry();
  if (withBuiltins) for (const c of builtinComponents) r.register(c);
  return r;
}

/** The registry specs use unless given another. */
export const defaultRegistry = createRegistry();

export function registerRewardComponent(component: AnyRewardComponent, registry = defaultRegistry): void {
  registry.register(component);
}

/**
 * Loads plugin modules (paths or package names) that export `components` (an array of
 * reward components) or a default component, and registers what they export.
 */
export function loadRewardPlugins(modules: string[], registry = defaultRegistry): string[] {
  const added: string[] = [];
  for (const m of modules) {
    const specifier = m.startsWith('.') || path.isAbsolute(m) ? path.resolve(m) : m;
    // The file is evaluated in a sandbox of its own (plugin-sandbox.ts), never required.
    const list = loadSandboxedPlugin(require.resolve(specifier));
    if (list.length === 0) throw new Error(`reward plugin ${m} exports no components (export const components = [...])`);
    for (const c of list) {
      registry.register(c);
      added.push(c.name);
    }
  }
  return added;
}
