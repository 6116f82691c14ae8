// Reading an environment's options (a spec's `environment.options`, plain JSON) with errors
// that name the field.
export type Options = Readonly<Record<string, unknown>>;

export class OptionReader {
  private readonly used = new Set<string>();
  constructor(
    private readonly options: Options,
    private readonly field: string,
  ) {}

  integer(name: string, fallback: number, min: number, max: number): number {
    this.used.add(name);
    const v = this.options[name] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new Error(`${this.field}.${name}: expected an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
    }
    return v;
  }

  boolean(name: string, fallback: boolean): boolean {
    this.used.add(name);
    const v = this.options[name] ?? fallback;
    if (typeof v !== 'boolean') throw new Error(`${this.field}.${name}: expected true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  string(name: string, fallback: string): string {
    this.used.add(name);
    const v = this.options[name] ?? fallback;
    if (typeof v !== 'string') throw new Error(`${this.field}.${name}: expected a string, got ${JSON.stringify(v)}`);
    return v;
  }

  /** Refuses options nobody asked for (a misspelt one would otherwise be ignored silently). */
  done(): void {
    const unknown = Object.keys(this.options).filter((k) => !this.used.has(k));
    if (unknown.length > 0) throw new Error(`${this.field}.${unknown[0]}: unknown option (known: ${[...this.used].join(', ') || 'none'})`);
  }
}
