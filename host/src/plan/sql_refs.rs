//! Finds the `<layer>.<table>` references in a SQL model, so that the plan
//! knows each step's inputs and can reject a reference nothing produces
//! before anything runs.

/// A qualified name found in SQL, with its 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqlRef {
    pub schema: String,
    pub table: String,
    pub line: usize,
    pub column: usize,
}

/// Returns every `a.b` name whose first part is one of `schemas`, in order of
/// appearance, skipping comments, string literals and function calls
/// (`a.b(`), and names with a third part (`a.b.c`, a column of a catalog table).
///
/// This is a tokenizer, not a SQL parser: it is exact for the references we
/// need (schema-qualified table names) and ignores everything else.
pub fn find_refs(sql: &str, schemas: &[&str]) -> Vec<SqlRef> {
    let tokens = tokenize(sql);
    let mut refs = Vec::new();
    let mut i = 0;
    while i + 2 < tokens.len() {
        if let (Token::Ident(schema, pos), Token::Dot, Token::Ident(table, _)) =
            (&tokens[i], &tokens[i + 1], &tokens[i + 2])
        {
            let preceded_by_dot = i > 0 && tokens[i - 1] == Token::Dot;
            let followed = tokens.get(i + 3);
            let is_call_or_longer = matches!(followed, Some(Token::Dot) | Some(Token::OpenParen));
            if !preceded_by_dot && !is_call_or_longer && schemas.iter().any(|s| s.eq_ignore_ascii_case(schema)) {
                refs.push(SqlRef {
                    schema: schema.to_ascii_lowercase(),
                    table: table.clone(),
                    line: pos.0,
                    column: pos.1,
                });
                i += 3;
                continue;
            }
        }
        i += 1;
    }
    refs
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Ident(String, (usize, usize)),
    Dot,
    OpenParen,
    Other,
}

fn tokenize(sql: &str) -> Vec<Token> {
    let chars: Vec<char> = sql.chars().collect();
    let mut tokens = Vec::new();
    let (mut line, mut column) = (1usize, 1usize);
    let mut i = 0;
    let advance = |c: char, line: &mut usize, column: &mut usize| {
        if c == '\n' {
            *line += 1;
            *column = 1;
        } else {
            *column += 1;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let start = (line, column);
        if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                advance(chars[i], &mut line, &mut column);
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            advance(chars[i], &mut line, &mut column);
            advance(chars[i + 1], &mut line, &mut column);
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                advance(chars[i], &mut line, &mut column);
                i += 1;
            }
            i = (i + 2).min(chars.len());
            column += 2;
        } else if c == '\'' || c == '"' {
            // String literal, or quoted identifier; a doubled quote escapes.
            let quote = c;
            let mut text = String::new();
            advance(c, &mut line, &mut column);
            i += 1;
            while i < chars.len() {
                if chars[i] == quote {
                    if chars.get(i + 1) == Some(&quote) {
                        text.push(quote);
                        advance(quote, &mut line, &mut column);
                        advance(quote, &mut line, &mut column);
                        i += 2;
                        continue;
                    }
                    advance(quote, &mut line, &mut column);
                    i += 1;
                    break;
                }
                text.push(chars[i]);
                advance(chars[i], &mut line, &mut column);
                i += 1;
            }
            tokens.push(if quote == '"' { Token::Ident(text, start) } else { Token::Other });
        } else if c.is_alphabetic() || c == '_' {
            let mut text = String::new();
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                text.push(chars[i]);
                advance(chars[i], &mut line, &mut column);
                i += 1;
            }
            tokens.push(Token::Ident(text, start));
        } else {
            tokens.push(match c {
                '.' => Token::Dot,
                '(' => Token::OpenParen,
                c if c.is_whitespace() => {
                    advance(c, &mut line, &mut column);
                    i += 1;
                    continue;
                }
                _ => Token::Other,
            });
            advance(c, &mut line, &mut column);
            i += 1;
        }
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> Vec<String> {
        find_refs(sql, &["bronze", "silver"]).into_iter().map(|r| format!("{}.{}", r.schema, r.table)).collect()
    }

    #[test]
    fn finds_qualified_tables_and_skips_the_rest() {
        let sql = "-- from bronze.in_comment\n\
                   SELECT c.id, 'bronze.in_string', \"quoted\" /* silver.block */\n\
                   FROM bronze.raw_customers AS c\n\
                   JOIN Silver.stg_orders o ON o.id = c.id\n\
                   WHERE bronze.f(1) AND x.bronze.y = 1";
        assert_eq!(names(sql), vec!["bronze.raw_customers", "silver.stg_orders"]);
    }

    #[test]
    fn reports_positions() {
        let refs = find_refs("SELECT *\n  FROM silver.nope", &["silver"]);
        assert_eq!(refs, vec![SqlRef { schema: "silver".into(), table: "nope".into(), line: 2, column: 8 }]);
    }

    #[test]
    fn quoted_identifiers_count() {
        assert_eq!(names("select * from \"bronze\".\"raw\""), vec!["bronze.raw"]);
    }
}
