//! HTML read as a browser reads it: a page's title and its forms' fields, each with the value
//! a browser would submit for it. One reader for the engine (the `form_field` extract, the
//! `title` check, `--check`'s comparison) and for convert (what a recorded page offers), so
//! convert never ties a value the run would not find. A WHATWG tokenizer (html5gum) does the
//! lexing: entities, unquoted attributes, comments and scripts that mention `<input` are
//! handled as a browser handles them. No IO.

use html5gum::emitters::default::DefaultEmitter;
use html5gum::{Token, Tokenizer};

/// What a page holds for someone filling in its forms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// The `<title>`, whitespace collapsed; `None` when the page has none.
    pub title: Option<String>,
    /// Every form, in document order.
    pub forms: Vec<Form>,
    /// Every named field, in document order.
    pub fields: Vec<Field>,
    /// Every `<a href>`, in document order.
    pub links: Vec<Link>,
    /// Every `<meta name=... content=...>` (`csrf-token` and the like), in document order.
    pub metas: Vec<(String, String)>,
}

/// A link: where it goes, as written, and its text, whitespace collapsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub href: String,
    pub text: String,
}

/// A `<form>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Form {
    /// The `action` attribute as written (`None`: the page's own URL).
    pub action: Option<String>,
    /// `GET` or `POST`, upper case.
    pub method: String,
}

/// A named form control.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    /// What a browser submits for it; `None` when it submits nothing (an unchecked box, a
    /// button nobody clicked, a select without options).
    pub value: Option<String>,
    pub kind: FieldKind,
    /// The index in [`Page::forms`] of the form it belongs to.
    pub form: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Hidden,
    /// Text, email, number, date... anything a person types into, but a password.
    Input,
    Password,
    Checkbox,
    Radio,
    /// A submit button or `<button>`: submitted only when it is the one clicked.
    Button,
    Select,
    Textarea,
}

/// A `<select>` being read: its field index and whether an option was selected yet.
struct OpenSelect {
    field: usize,
    selected: bool,
    multiple: bool,
}

/// An `<option>` being read: its value attribute (else its text is the value).
struct OpenOption {
    value: Option<String>,
    selected: bool,
    text: String,
}

impl Page {
    /// Reads a page. Never fails: tag soup is read as a browser would read it.
    pub fn parse(html: &str) -> Page {
        let mut page = Page::default();
        let mut emitter = DefaultEmitter::default();
        // `<title>`, `<textarea>`, `<script>` and `<style>` hold text, not tags.
        emitter.naively_switch_states(true);
        let tokenizer = Tokenizer::new_with_emitter(html, emitter);
        let mut form: Option<usize> = None;
        let mut title: Option<String> = None;
        let mut textarea: Option<usize> = None;
        let mut select: Option<OpenSelect> = None;
        let mut option: Option<OpenOption> = None;
        let mut link: Option<Link> = None;
        for Ok(token) in tokenizer {
            match token {
                Token::StartTag(tag) => {
                    let name = String::from_utf8_lossy(&tag.name).to_ascii_lowercase();
                    let attribute = |key: &str| {
                        tag.attributes
                            .get(key.as_bytes())
                            .map(|value| String::from_utf8_lossy(value).into_owned())
                    };
                    match name.as_str() {
                        "title" if page.title.is_none() => title = Some(String::new()),
                        "a" => {
                            if let Some(open) = link.take() {
                                page.links.push(close_link(open));
                            }
                            link = attribute("href").map(|href| Link {
                                href,
                                text: String::new(),
                            });
                        }
                        "meta" => {
                            if let (Some(name), Some(content)) =
                                (attribute("name"), attribute("content"))
                            {
                                page.metas.push((name, content));
                            }
                        }
                        "form" => {
                            page.forms.push(Form {
                                action: attribute("action"),
                                method: attribute("method")
                                    .map(|m| m.to_ascii_uppercase())
                                    .filter(|m| m == "POST")
                                    .unwrap_or_else(|| "GET".to_owned()),
                            });
                            form = Some(page.forms.len() - 1);
                        }
                        "input" => {
                            let Some(field_name) = attribute("name").filter(|n| !n.is_empty())
                            else {
                                continue;
                            };
                            let kind_text =
                                attribute("type").unwrap_or_default().to_ascii_lowercase();
                            let checked = tag.attributes.contains_key(b"checked".as_slice());
                            let (kind, value) = match kind_text.as_str() {
                                "hidden" => (FieldKind::Hidden, attribute("value")),
                                "checkbox" | "radio" => {
                                    let kind = if kind_text == "radio" {
                                        FieldKind::Radio
                                    } else {
                                        FieldKind::Checkbox
                                    };
                                    let value = attribute("value").unwrap_or_else(|| "on".into());
                                    (kind, checked.then_some(value))
                                }
                                "submit" | "image" | "button" | "reset" => {
                                    (FieldKind::Button, None)
                                }
                                "file" => (FieldKind::Input, None),
                                "password" => (
                                    FieldKind::Password,
                                    Some(attribute("value").unwrap_or_default()),
                                ),
                                _ => (
                                    FieldKind::Input,
                                    Some(attribute("value").unwrap_or_default()),
                                ),
                            };
                            page.fields.push(Field {
                                name: field_name,
                                value,
                                kind,
                                form,
                            });
                        }
                        "button" => {
                            if let Some(field_name) = attribute("name").filter(|n| !n.is_empty()) {
                                page.fields.push(Field {
                                    name: field_name,
                                    value: None,
                                    kind: FieldKind::Button,
                                    form,
                                });
                            }
                        }
                        "textarea" => {
                            if let Some(field_name) = attribute("name").filter(|n| !n.is_empty()) {
                                page.fields.push(Field {
                                    name: field_name,
                                    value: Some(String::new()),
                                    kind: FieldKind::Textarea,
                                    form,
                                });
                                textarea = Some(page.fields.len() - 1);
                            }
                        }
                        "select" => {
                            select = attribute("name").filter(|n| !n.is_empty()).map(|n| {
                                page.fields.push(Field {
                                    name: n,
                                    value: None,
                                    kind: FieldKind::Select,
                                    form,
                                });
                                OpenSelect {
                                    field: page.fields.len() - 1,
                                    selected: false,
                                    multiple: tag.attributes.contains_key(b"multiple".as_slice()),
                                }
                            });
                        }
                        "option" if select.is_some() => {
                            close_option(&mut page, &mut select, option.take());
                            option = Some(OpenOption {
                                value: attribute("value"),
                                selected: tag.attributes.contains_key(b"selected".as_slice()),
                                text: String::new(),
                            });
                        }
                        _ => {}
                    }
                }
                Token::EndTag(tag) => match tag.name.as_slice() {
                    b"title" | b"TITLE" => {
                        if let Some(text) = title.take() {
                            page.title = Some(collapse(&text));
                        }
                    }
                    b"form" | b"FORM" => form = None,
                    b"a" | b"A" => {
                        if let Some(open) = link.take() {
                            page.links.push(close_link(open));
                        }
                    }
                    b"textarea" | b"TEXTAREA" => textarea = None,
                    b"option" | b"OPTION" => close_option(&mut page, &mut select, option.take()),
                    b"select" | b"SELECT" => {
                        close_option(&mut page, &mut select, option.take());
                        select = None;
                    }
                    _ => {}
                },
                Token::String(text) => {
                    let text = String::from_utf8_lossy(&text);
                    if let Some(title) = &mut title {
                        title.push_str(&text);
                    } else if let Some(index) = textarea {
                        if let Some(value) = &mut page.fields[index].value {
                            // A newline right after `<textarea>` is not part of the value.
                            let text = if value.is_empty() {
                                text.strip_prefix("\r\n")
                                    .or_else(|| text.strip_prefix('\n'))
                                    .unwrap_or(&text)
                            } else {
                                &text
                            };
                            value.push_str(text);
                        }
                    } else if let Some(option) = &mut option {
                        option.text.push_str(&text);
                    }
                    if let Some(link) = &mut link {
                        link.text.push_str(&text);
                    }
                }
                _ => {}
            }
        }
        close_option(&mut page, &mut select, option.take());
        if let Some(open) = link.take() {
            page.links.push(close_link(open));
        }
        if let Some(text) = title {
            page.title = Some(collapse(&text));
        }
        page
    }

    /// The first field named `name` that a browser would submit a value for.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields
            .iter()
            .find(|field| field.name == name && field.value.is_some())
    }

    /// The `content` of the first `<meta>` named `name`.
    pub fn meta(&self, name: &str) -> Option<&str> {
        self.metas
            .iter()
            .find(|(meta, _)| meta.eq_ignore_ascii_case(name))
            .map(|(_, content)| content.as_str())
    }

    /// The names of every field, sorted, each once: the shape of the page's forms.
    pub fn field_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.fields.iter().map(|f| f.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

/// An option ends: the select's value is the first selected option, else its first option
/// (what a browser submits for a single select).
fn close_option(page: &mut Page, select: &mut Option<OpenSelect>, option: Option<OpenOption>) {
    let (Some(open), Some(option)) = (select.as_mut(), option) else {
        return;
    };
    let value = option.value.unwrap_or_else(|| collapse(&option.text));
    let field = &mut page.fields[open.field];
    if option.selected && !open.selected {
        field.value = Some(value);
        open.selected = true;
    } else if field.value.is_none() && !open.multiple {
        field.value = Some(value);
    }
}

fn close_link(link: Link) -> Link {
    Link {
        text: collapse(&link.text),
        ..link
    }
}

/// Whitespace runs as one space, trimmed.
fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The title of `html`, when it has one.
pub fn title(html: &str) -> Option<String> {
    Page::parse(html).title
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_carry_what_a_browser_submits() {
        let page = Page::parse(
            r#"<html><head><title>
                Change flat page | Django &amp; co
            </title></head><body>
            <script>var s = '<input name="fake" value="no">';</script>
            <!-- <input name="commented" value="no"> -->
            <form method="post" action="/save/">
              <input type="hidden" name="csrf" value="a&amp;b">
              <INPUT value='v2' NAME=other>
              <input name="blank">
              <input type="checkbox" name="box" checked>
              <input type="checkbox" name="off" value="1">
              <input type="radio" name="r" value="x"><input type="radio" name="r" value="y" checked>
              <select name="sites"><option value="1">one</option><option value="2" selected>two</option></select>
              <select name="first"><option>alpha</option><option>beta</option></select>
              <textarea name="content">
line &lt;one&gt;</textarea>
              <input type="submit" name="_save" value="Save">
            </form>
            <form><input name="q" value="search"><input type=password name=p></form>
            <meta name="csrf-token" content="tok&amp;1">
            <a href="/x/4/change/">/notes-<b>user01</b>/</a> <a href='/y'>Y</a><a name=anchor>"#,
        );
        assert_eq!(page.meta("CSRF-Token"), Some("tok&1"));
        assert_eq!(
            page.links,
            vec![
                Link {
                    href: "/x/4/change/".to_owned(),
                    text: "/notes-user01/".to_owned()
                },
                Link {
                    href: "/y".to_owned(),
                    text: "Y".to_owned()
                }
            ]
        );
        assert_eq!(page.field("p").unwrap().kind, FieldKind::Password);
        assert_eq!(
            page.title.as_deref(),
            Some("Change flat page | Django & co")
        );
        assert_eq!(
            page.forms,
            vec![
                Form {
                    action: Some("/save/".to_owned()),
                    method: "POST".to_owned()
                },
                Form {
                    action: None,
                    method: "GET".to_owned()
                }
            ]
        );
        let value = |name: &str| page.field(name).and_then(|f| f.value.clone());
        assert_eq!(value("csrf").as_deref(), Some("a&b"));
        assert_eq!(value("other").as_deref(), Some("v2"));
        assert_eq!(value("blank").as_deref(), Some(""));
        assert_eq!(value("box").as_deref(), Some("on"));
        assert_eq!(value("off"), None);
        assert_eq!(value("r").as_deref(), Some("y"));
        assert_eq!(value("sites").as_deref(), Some("2"));
        assert_eq!(value("first").as_deref(), Some("alpha"));
        assert_eq!(value("content").as_deref(), Some("line <one>"));
        assert_eq!(value("_save"), None);
        assert_eq!(value("fake"), None);
        assert_eq!(value("commented"), None);
        assert_eq!(page.field("q").unwrap().form, Some(1));
        assert_eq!(
            page.field_names(),
            [
                "_save", "blank", "box", "content", "csrf", "first", "off", "other", "p", "q", "r",
                "sites"
            ]
        );
    }

    #[test]
    fn a_page_without_title_or_forms() {
        assert_eq!(Page::parse("{\"json\": true}"), Page::default());
        assert_eq!(title("<title> x </title><p>"), Some("x".to_owned()));
        // Unclosed, the rest of the page is its text, as in a browser.
        assert_eq!(title("<title>x</title"), Some("x</title".to_owned()));
    }
}
