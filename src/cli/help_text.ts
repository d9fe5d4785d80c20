/**
 * Help text of our own around commander's: notes after the options, and the list of commands.
 * Both are wrapped at the width commander wraps the options at (the terminal's, or 80 when
 * stdout is no terminal), so no sentence is cut where the text was written and again where the
 * terminal ends. Write each paragraph as one line; `\n` starts a new one.
 */
import { type AddHelpTextContext, type Command, Help, type HelpConfiguration } from "commander";

/** Where a description starts when its term is on a row of its own. */
const NARROW_INDENT = " ".repeat(6);

/**
 * How every command lays out its items (options, arguments, commands). Commander leaves a
 * description unwrapped when its column would be narrower than `minWidthToWrap` (40), and the
 * terminal then cuts it mid-word: on such a terminal the description goes on rows of its own
 * below the term, wrapped at the terminal's width.
 */
export const HELP_LAYOUT: HelpConfiguration = {
  formatItem(this: Help, term, termWidth, description, helper) {
    const width = this.helpWidth ?? 80;
    // Commander's own layout: two spaces, the padded term, two spaces, the description.
    if (description === "" || width - termWidth - 4 >= this.minWidthToWrap) {
      return Help.prototype.formatItem.call(this, term, termWidth, description, helper);
    }
    const wrapped = helper.boxWrap(description, width - NARROW_INDENT.length);
    return `  ${term}\n${wrapped.replace(/^/gm, NARROW_INDENT)}`;
  },
};

/** The width commander formats `context.command`'s help at. */
export function helpWidth(context: AddHelpTextContext): number {
  const output = context.command.configureOutput();
  const width = context.error ? output.getErrHelpWidth?.() : output.getOutHelpWidth?.();
  // A terminal that reports no size (0 columns) gets what a pipe gets.
  return width !== undefined && width > 0 ? width : 80;
}

/**
 * Adds `paragraphs` after `command`'s options, each wrapped at the help's width; "" is a blank
 * line between them.
 */
export function addHelpNotes(command: Command, paragraphs: readonly string[]): Command {
  return command.addHelpText("after", (context) => {
    const help = context.command.createHelp();
    return `\n${help.boxWrap(paragraphs.join("\n"), helpWidth(context))}`;
  });
}

/** One line of {@linkcode addCommandList}: a command's name as typed, and what it does. */
export interface CommandItem {
  /** `push`, `pull`. */
  term: string;
  description: string;
}

/**
 * Adds a `Commands:` section after `command`'s options, laid out as commander lays out
 * options (aligned, each description wrapped in its column): the help a user sees first
 * belongs to the default command, and would otherwise never name the others.
 */
export function addCommandList(command: Command, items: () => readonly CommandItem[]): Command {
  return command.addHelpText("after", (context) => {
    const help = context.command.createHelp();
    help.prepareContext({ error: context.error, helpWidth: helpWidth(context) });
    const list = items();
    const termWidth = Math.max(...list.map((item) => item.term.length));
    const rows = list.map((item) => help.formatItem(item.term, termWidth, item.description, help));
    return `\nCommands:\n${rows.join("\n")}`;
  });
}
