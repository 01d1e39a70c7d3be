//! Reading input: whether a line is complete, the line readers (rustyline on a terminal,
//! stdin otherwise), and the loop that feeds a session.

use super::*;

/// Does `text` parse up to its end and then lack the rest (`let b =`, `1 +`, `if x`, `x.`)?
/// True when rhai reports an unexpected end of input, or an error placed after the text's last
/// non-blank character.
pub fn is_incomplete(engine: &Engine, text: &str) -> bool {
    let Err(e) = engine.compile(text) else {
        return false;
    };
    if matches!(e.err_type(), rhai::ParseErrorType::UnexpectedEOF) {
        return true;
    }
    let (Some(line), Some(col)) = (e.position().line(), e.position().position()) else {
        return false;
    };
    // The (line, column) of the last non-blank character.
    let last = text
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let n = l.trim_end().chars().count();
            (n > 0).then_some((i + 1, n))
        })
        .last();
    match last {
        Some(end) => (line, col) > end,
        None => false,
    }
}

/// Does `text` end inside a bracket, a back-tick string or a block comment? (Brackets inside
/// strings, characters and comments do not count.)
pub fn needs_more(text: &str) -> bool {
    let mut depth: i64 = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                // A one-line string or character: ends at the same quote or the line's end.
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => {
                            chars.next();
                        }
                        '\n' => break,
                        d if d == c => break,
                        _ => {}
                    }
                }
            }
            '`' => {
                let mut closed = false;
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => {
                            chars.next();
                        }
                        '`' => {
                            closed = true;
                            break;
                        }
                        _ => {}
                    }
                }
                if !closed {
                    return true;
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut nest = 1;
                while nest > 0 {
                    match chars.next() {
                        None => return true,
                        Some('*') if chars.peek() == Some(&'/') => {
                            chars.next();
                            nest -= 1;
                        }
                        Some('/') if chars.peek() == Some(&'*') => {
                            chars.next();
                            nest += 1;
                        }
                        Some(_) => {}
                    }
                }
            }
            '{' | '(' | '[' => depth += 1,
            '}' | ')' | ']' => depth -= 1,
            _ => {}
        }
    }
    depth > 0
}

/// What reading a line gave.
pub enum Read {
    Line(String),
    /// Ctrl-C at the prompt.
    Interrupted,
    /// Ctrl-D or end of input.
    Eof,
}

/// A source of input lines.
pub trait LineReader {
    fn read(&mut self, prompt: &str, names: Names) -> Read;
}

/// Lines from stdin, no prompts (stdin is not a terminal).
pub struct StdinReader;

impl LineReader for StdinReader {
    fn read(&mut self, _prompt: &str, _names: Names) -> Read {
        let mut line = String::new();
        match std::io::stdin().lock().read_line(&mut line) {
            Ok(0) | Err(_) => Read::Eof,
            Ok(_) => Read::Line(line.trim_end_matches(['\n', '\r']).to_string()),
        }
    }
}

/// Completion for rustyline.
pub(super) struct Helper {
    names: Names,
}

impl rustyline::completion::Completer for Helper {
    type Candidate = String;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(self.names.complete(line, pos))
    }
}
impl rustyline::hint::Hinter for Helper {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for Helper {}
impl rustyline::validate::Validator for Helper {}
impl rustyline::Helper for Helper {}

/// The rustyline editor: history in a file, Ctrl-R search, tab completion.
pub struct EditorReader {
    editor: rustyline::Editor<Helper, rustyline::history::DefaultHistory>,
    history: Option<PathBuf>,
}

/// `$GANSCRIPT_HISTORY`, else `~/.ganscript_history`.
pub fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GANSCRIPT_HISTORY") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ganscript_history"))
}

impl EditorReader {
    pub fn new() -> Option<Self> {
        // Tab lists every candidate (and completes their common prefix), as bash does.
        let config = rustyline::Config::builder()
            .completion_type(rustyline::CompletionType::List)
            .build();
        let mut editor = rustyline::Editor::with_config(config).ok()?;
        editor.set_helper(Some(Helper {
            names: Names::default(),
        }));
        let history = history_path();
        if let Some(p) = &history {
            let _ = editor.load_history(p);
        }
        Some(EditorReader { editor, history })
    }
}

impl LineReader for EditorReader {
    fn read(&mut self, prompt: &str, names: Names) -> Read {
        if let Some(h) = self.editor.helper_mut() {
            h.names = names;
        }
        match self.editor.readline(prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = self.editor.add_history_entry(line.as_str());
                    if let Some(p) = &self.history {
                        let _ = self.editor.save_history(p);
                    }
                }
                Read::Line(line)
            }
            Err(rustyline::error::ReadlineError::Interrupted) => Read::Interrupted,
            Err(rustyline::error::ReadlineError::Eof) => Read::Eof,
            Err(e) => {
                eprintln!("cannot read input: {e}");
                Read::Eof
            }
        }
    }
}

/// rustyline when stdin is a terminal, else plain stdin lines.
pub fn reader() -> Box<dyn LineReader> {
    if std::io::stdin().is_terminal() {
        if let Some(r) = EditorReader::new() {
            return Box::new(r);
        }
    }
    Box::new(StdinReader)
}

/// The read-eval-print loop over `reader`, until `:quit`, `:continue` or end of input.
pub fn interact(
    engine: &Engine,
    scope: &mut Scope,
    session: &mut Session,
    reader: &mut dyn LineReader,
) -> Action {
    loop {
        let names = Names {
            functions: session.functions.clone(),
            script_fns: session.script_fns(),
            vars: scope.iter_raw().map(|(n, ..)| n.to_string()).collect(),
        };
        match reader.read(session.prompt(), names) {
            Read::Line(line) => {
                let o = session.handle_line(engine, scope, &line);
                print!("{}", o.out);
                let _ = std::io::stdout().flush();
                eprint!("{}", o.err);
                if o.action != Action::Next {
                    return o.action;
                }
            }
            Read::Interrupted => {
                if session.is_pending() {
                    session.cancel();
                } else {
                    eprintln!("(Ctrl-C: line cancelled; :quit or Ctrl-D leaves)");
                }
            }
            Read::Eof => return Action::EndOfInput,
        }
    }
}
