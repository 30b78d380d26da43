/**
 * TypeBox's type builders (`Type.Object`, `Type.Optional`, ...) as a plain module namespace. The
 * package's own `Type` is one object holding every builder, which a bundler cannot trim: importing it
 * here instead lets `npm run build` keep only the builders used, so `fraisier history` loads less. Same
 * functions, same schemas. The package entry still exports TypeBox's own `Type` to plugin authors.
 */
export * as Type from '@sinclair/typebox/type';
