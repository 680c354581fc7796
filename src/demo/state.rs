//! The demo application's domain: accounts, sessions, classes and game sessions, as plain
//! functions over one state value. No HTTP here; `routes` maps requests onto these calls.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};

/// The teacher account that exists from the start.
pub const TEACHER_USERNAME: &str = "teacher@example.org";
/// Its password.
pub const TEACHER_PASSWORD: &str = "teacher";
/// The one game the demo platform hosts.
pub const GAME_ID: &str = "AA-1";
/// Ended game sessions kept for `/__demo/stats`; live ones are always kept.
const ENDED_GAME_SESSIONS_KEPT: usize = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Teacher,
    Student,
}

/// A refusal the HTTP edge turns into a 4xx JSON error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) status: u16,
    pub(crate) message: String,
}

impl Refusal {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

type Outcome<T> = Result<T, Refusal>;

#[derive(Debug)]
struct Account {
    password: String,
    role: Role,
    first_name: String,
    last_name: String,
    course_id: Option<u64>,
    /// The one live session of this account: a new login revokes the previous one.
    session: Option<String>,
    total_time_played: u64,
    saves: u64,
}

impl Account {
    /// A new account: no session yet, nothing played or saved.
    fn new(
        password: &str,
        role: Role,
        (first_name, last_name): (&str, &str),
        course_id: Option<u64>,
    ) -> Self {
        Self {
            password: password.to_owned(),
            role,
            first_name: first_name.to_owned(),
            last_name: last_name.to_owned(),
            course_id,
            session: None,
            total_time_played: 0,
            saves: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Course {
    pub(crate) id: u64,
    pub(crate) title: String,
    pub(crate) grade: String,
    pub(crate) code: String,
    #[serde(skip)]
    pub(crate) teacher: String,
    pub(crate) students: u64,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct GameSession {
    pub(crate) id: String,
    pub(crate) user: String,
    pub(crate) course_id: u64,
    pub(crate) device_id: String,
    /// When the session started, in milliseconds since the app started.
    pub(crate) started_ms: u64,
    pub(crate) ended: bool,
    /// Arrival of each events post, in milliseconds since the game session started.
    pub(crate) event_times_ms: Vec<u64>,
    pub(crate) events: u64,
}

/// What a successful login returns.
#[derive(Debug, Clone)]
pub(crate) struct Login {
    pub(crate) session_id: String,
    pub(crate) body: Value,
}

/// A live login session, as found from its id.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) username: String,
    pub(crate) role: Role,
}

#[derive(Debug)]
pub(crate) struct State {
    accounts: HashMap<String, Account>,
    sessions: HashMap<String, String>,
    courses: Vec<Course>,
    game_sessions: HashMap<String, GameSession>,
    ended_order: VecDeque<String>,
    events_period_secs: u32,
    events_detail_level: u32,
    started: Instant,
    next_token: u64,
    token_salt: u64,
}

impl State {
    pub(crate) fn new(events_period_secs: u32) -> Self {
        let mut accounts = HashMap::new();
        accounts.insert(
            TEACHER_USERNAME.to_owned(),
            Account::new(TEACHER_PASSWORD, Role::Teacher, ("Demo", "Teacher"), None),
        );
        Self {
            accounts,
            sessions: HashMap::new(),
            courses: Vec::new(),
            game_sessions: HashMap::new(),
            ended_order: VecDeque::new(),
            events_period_secs,
            events_detail_level: 2,
            started: Instant::now(),
            next_token: 1,
            token_salt: rand::random(),
        }
    }

    /// Unguessable enough for a demo, unique for sure: a counter mixed with a per-app salt.
    fn token(&mut self, prefix: &str) -> String {
        let n = self.next_token;
        self.next_token += 1;
        let mixed = (n ^ self.token_salt)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
        format!("{prefix}{mixed:016x}{n:x}")
    }

    fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub(crate) fn login(&mut self, username: &str, password: &str, role: Role) -> Outcome<Login> {
        let Some(account) = self.accounts.get(username) else {
            return Err(Refusal::new(401, "wrong username or password"));
        };
        if account.password != password {
            return Err(Refusal::new(401, "wrong username or password"));
        }
        if account.role != role {
            let which = match role {
                Role::Teacher => {
                    "this login is for teachers; students log in at /api/v2/auth/login/glasslab"
                }
                Role::Student => "this login is for students; teachers log in at /api/user/login",
            };
            return Err(Refusal::new(401, which));
        }
        let session_id = self.token("s");
        let account = self.accounts.get_mut(username).expect("checked above");
        if let Some(old) = account.session.replace(session_id.clone()) {
            self.sessions.remove(&old);
        }
        let body = json!({
            "sessionId": session_id,
            "username": username,
            "firstName": account.first_name,
            "lastName": account.last_name,
            "role": match role { Role::Teacher => "instructor", Role::Student => "student" },
        });
        self.sessions
            .insert(session_id.clone(), username.to_owned());
        Ok(Login { session_id, body })
    }

    pub(crate) fn logout(&mut self, session_id: &str) {
        if let Some(username) = self.sessions.remove(session_id) {
            if let Some(account) = self.accounts.get_mut(&username) {
                account.session = None;
            }
        }
    }

    /// The caller behind a session id, or 401 when it is unknown or was revoked.
    pub(crate) fn caller(&self, session_id: Option<&str>) -> Outcome<Caller> {
        let Some(session_id) = session_id else {
            return Err(Refusal::new(
                401,
                "not logged in: log in first (no session cookie)",
            ));
        };
        let Some(username) = self.sessions.get(session_id) else {
            return Err(Refusal::new(
                401,
                "session expired or revoked (the account logged in again elsewhere): log in again",
            ));
        };
        let role = self.accounts[username].role;
        Ok(Caller {
            username: username.clone(),
            role,
        })
    }

    fn require(&self, session_id: Option<&str>, role: Role) -> Outcome<Caller> {
        let caller = self.caller(session_id)?;
        if caller.role != role {
            let what = match role {
                Role::Teacher => "only teachers may do this",
                Role::Student => "only students may do this",
            };
            return Err(Refusal::new(403, what));
        }
        Ok(caller)
    }

    pub(crate) fn create_course(
        &mut self,
        session_id: Option<&str>,
        title: &str,
        grade: &str,
    ) -> Outcome<Course> {
        let caller = self.require(session_id, Role::Teacher)?;
        if title.trim().is_empty() {
            return Err(Refusal::new(400, "field `title` must not be empty"));
        }
        if self
            .courses
            .iter()
            .any(|c| c.teacher == caller.username && c.title == title)
        {
            return Err(Refusal::new(
                409,
                format!("you already have a class titled {title:?}"),
            ));
        }
        Ok(self.insert_course(&caller.username, title, grade))
    }

    fn insert_course(&mut self, teacher: &str, title: &str, grade: &str) -> Course {
        let id = self.courses.len() as u64 + 1;
        let code = course_code(id, self.token_salt);
        let course = Course {
            id,
            title: title.to_owned(),
            grade: grade.to_owned(),
            code,
            teacher: teacher.to_owned(),
            students: 0,
        };
        self.courses.push(course.clone());
        course
    }

    pub(crate) fn courses_of_teacher(&self, session_id: Option<&str>) -> Outcome<Vec<Course>> {
        let caller = self.require(session_id, Role::Teacher)?;
        Ok(self
            .courses
            .iter()
            .filter(|c| c.teacher == caller.username)
            .cloned()
            .collect())
    }

    pub(crate) fn validate_code(&self, code: &str) -> Outcome<u64> {
        self.courses
            .iter()
            .find(|c| c.code.eq_ignore_ascii_case(code))
            .map(|c| c.id)
            .ok_or_else(|| Refusal::new(404, format!("no class has the code {code:?}")))
    }

    pub(crate) fn register(&mut self, form: &Registration) -> Outcome<Value> {
        if form.kind != "course" {
            return Err(Refusal::new(
                400,
                format!("field `type` must be \"course\", found {:?}", form.kind),
            ));
        }
        if form.username.trim().is_empty() || form.password.is_empty() {
            return Err(Refusal::new(
                400,
                "fields `username` and `password` must not be empty",
            ));
        }
        if self.accounts.contains_key(&form.username) {
            return Err(Refusal::new(
                409,
                format!("the username {:?} is taken", form.username),
            ));
        }
        let Some(course) = self.courses.iter_mut().find(|c| c.id == form.associated_id) else {
            return Err(Refusal::new(
                400,
                format!(
                    "field `associatedId`: no class has the id {}",
                    form.associated_id
                ),
            ));
        };
        course.students += 1;
        let course_id = course.id;
        self.accounts.insert(
            form.username.clone(),
            Account::new(
                &form.password,
                Role::Student,
                (&form.first_name, &form.last_name),
                Some(course_id),
            ),
        );
        Ok(json!({ "username": form.username, "courseId": course_id, "role": "student" }))
    }

    pub(crate) fn student_courses(&self, session_id: Option<&str>) -> Outcome<Value> {
        let caller = self.require(session_id, Role::Student)?;
        let course_id = self.accounts[&caller.username].course_id;
        let list: Vec<Value> = self
            .courses
            .iter()
            .filter(|c| Some(c.id) == course_id)
            .map(|c| json!({ "id": c.id, "title": c.title, "grade": c.grade, "games": [GAME_ID] }))
            .collect();
        Ok(Value::Array(list))
    }

    pub(crate) fn game_config(&self, session_id: Option<&str>, game_id: &str) -> Outcome<Value> {
        self.caller(session_id)?;
        check_game(game_id)?;
        Ok(json!({
            "gameId": game_id,
            "eventsPeriodSecs": self.events_period_secs,
            "eventsDetailLevel": self.events_detail_level,
            "eventsMinSize": 1,
            "eventsMaxSize": 100,
        }))
    }

    pub(crate) fn play_info(&self, session_id: Option<&str>, game_id: &str) -> Outcome<Value> {
        let caller = self.caller(session_id)?;
        check_game(game_id)?;
        let account = &self.accounts[&caller.username];
        Ok(json!({
            "gameId": game_id,
            "totalTimePlayed": account.total_time_played,
            "saves": account.saves,
        }))
    }

    pub(crate) fn start_game_session(
        &mut self,
        session_id: Option<&str>,
        start: &SessionStart,
    ) -> Outcome<Value> {
        let caller = self.require(session_id, Role::Student)?;
        check_game(&start.game_id)?;
        if Some(start.user_session_id.as_str()) != session_id {
            return Err(Refusal::new(
                400,
                "field `userSessionId` is not your session id (use the sessionId your login returned)",
            ));
        }
        let own_course = self.accounts[&caller.username].course_id;
        if own_course != Some(start.course_id) {
            return Err(Refusal::new(
                400,
                format!(
                    "field `courseId`: you are not enrolled in class {}",
                    start.course_id
                ),
            ));
        }
        if start.device_id.trim().is_empty() {
            return Err(Refusal::new(400, "field `deviceId` must not be empty"));
        }
        let id = self.token("g");
        let started_ms = self.elapsed_ms();
        self.game_sessions.insert(
            id.clone(),
            GameSession {
                id: id.clone(),
                user: caller.username,
                course_id: start.course_id,
                device_id: start.device_id.clone(),
                started_ms,
                ended: false,
                event_times_ms: Vec::new(),
                events: 0,
            },
        );
        Ok(json!({
            "gameSessionId": id,
            "eventsPeriodSecs": self.events_period_secs,
            "eventsDetailLevel": self.events_detail_level,
        }))
    }

    /// Accepts a batch only when every event names a live game session of the caller.
    pub(crate) fn post_events(
        &mut self,
        session_id: Option<&str>,
        game_session_ids: &[String],
    ) -> Outcome<Value> {
        let caller = self.require(session_id, Role::Student)?;
        if game_session_ids.is_empty() {
            return Err(Refusal::new(400, "the batch holds no events"));
        }
        for (index, id) in game_session_ids.iter().enumerate() {
            let why = match self.own_live_game_session(&caller.username, id) {
                Ok(_) => continue,
                Err(NotLive::Ended) => "has ended",
                Err(NotLive::Another) => "belongs to another user",
                Err(NotLive::Missing) => {
                    let message = format!("event {index}: no live game session {id:?}");
                    return Err(Refusal::new(400, message));
                }
            };
            let message = format!("event {index}: game session {id:?} {why}");
            return Err(Refusal::new(400, message));
        }
        let now = self.elapsed_ms();
        let mut seen: Vec<&String> = game_session_ids.iter().collect();
        seen.sort();
        seen.dedup();
        for id in seen {
            let game = self.game_sessions.get_mut(id).expect("checked above");
            game.event_times_ms
                .push(now.saturating_sub(game.started_ms));
            game.events += game_session_ids.iter().filter(|g| *g == id).count() as u64;
        }
        Ok(json!({ "status": "ok", "accepted": game_session_ids.len() }))
    }

    pub(crate) fn end_game_session(
        &mut self,
        session_id: Option<&str>,
        game_session_id: &str,
    ) -> Outcome<Value> {
        let caller = self.require(session_id, Role::Student)?;
        let why = match self.own_live_game_session(&caller.username, game_session_id) {
            Ok(game) => {
                game.ended = true;
                None
            }
            Err(NotLive::Ended) => Some("has already ended"),
            Err(NotLive::Another) => Some("belongs to another user"),
            Err(NotLive::Missing) => {
                let message = format!("no game session {game_session_id:?}");
                return Err(Refusal::new(400, message));
            }
        };
        if let Some(why) = why {
            let message = format!("game session {game_session_id:?} {why}");
            return Err(Refusal::new(400, message));
        }
        self.ended_order.push_back(game_session_id.to_owned());
        while self.ended_order.len() > ENDED_GAME_SESSIONS_KEPT {
            if let Some(old) = self.ended_order.pop_front() {
                self.game_sessions.remove(&old);
            }
        }
        Ok(json!({ "status": "ok" }))
    }

    /// The game session `id` when it is `username`'s and still live; else why not.
    fn own_live_game_session(
        &mut self,
        username: &str,
        id: &str,
    ) -> Result<&mut GameSession, NotLive> {
        match self.game_sessions.get_mut(id) {
            Some(game) if game.user == username && !game.ended => Ok(game),
            Some(game) if game.user == username => Err(NotLive::Ended),
            Some(_) => Err(NotLive::Another),
            None => Err(NotLive::Missing),
        }
    }

    /// The account of the student behind `session_id`, once `game_id` is the demo's game.
    fn student_playing(
        &mut self,
        session_id: Option<&str>,
        game_id: &str,
    ) -> Outcome<&mut Account> {
        let caller = self.require(session_id, Role::Student)?;
        check_game(game_id)?;
        Ok(self
            .accounts
            .get_mut(&caller.username)
            .expect("caller exists"))
    }

    pub(crate) fn save_game(&mut self, session_id: Option<&str>, game_id: &str) -> Outcome<Value> {
        let account = self.student_playing(session_id, game_id)?;
        account.saves += 1;
        Ok(json!({ "status": "ok", "saves": account.saves }))
    }

    pub(crate) fn add_time_played(
        &mut self,
        session_id: Option<&str>,
        game_id: &str,
        seconds: u64,
    ) -> Outcome<Value> {
        let account = self.student_playing(session_id, game_id)?;
        account.total_time_played += seconds;
        Ok(json!({ "status": "ok", "totalTimePlayed": account.total_time_played }))
    }

    /// Creates `classes` classes of `students` students for the teacher; returns
    /// `(username, password, class title)` of every student.
    pub(crate) fn seed(&mut self, classes: u32, students: u32) -> Vec<(String, String, String)> {
        let mut rows = Vec::with_capacity(classes as usize * students as usize);
        for c in 1..=classes {
            let title = format!("class-{c:03}");
            let course = self.insert_course(TEACHER_USERNAME, &title, "7");
            for s in 1..=students {
                let form = Registration {
                    username: format!("student-{c:03}-{s:03}"),
                    password: format!("pw-{c:03}-{s:03}"),
                    first_name: "Student".to_owned(),
                    last_name: format!("{c}-{s}"),
                    kind: "course".to_owned(),
                    associated_id: course.id,
                };
                self.register(&form).expect("seeded usernames are unique");
                rows.push((form.username, form.password, title.clone()));
            }
        }
        rows
    }

    pub(crate) fn live_sessions(&self) -> usize {
        self.sessions.len()
    }

    pub(crate) fn game_sessions(&self) -> Vec<GameSession> {
        let mut list: Vec<GameSession> = self.game_sessions.values().cloned().collect();
        list.sort_by_key(|g| g.started_ms);
        list
    }
}

/// Why a game session named in a request is not one the caller may post to or end.
enum NotLive {
    Ended,
    Another,
    Missing,
}

fn check_game(game_id: &str) -> Outcome<()> {
    if game_id == GAME_ID {
        Ok(())
    } else {
        Err(Refusal::new(
            404,
            format!("no game {game_id:?} (the demo hosts {GAME_ID:?})"),
        ))
    }
}

/// Six letters from the class id and the app's salt: distinct per class, different per app run.
fn course_code(id: u64, salt: u64) -> String {
    const LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut n = (id ^ salt).wrapping_mul(0x2545_F491_4F6C_DD1D) % 24u64.pow(5);
    let mut code = String::with_capacity(6);
    // The id itself makes the code unique; the mixed part makes it look random.
    code.push(LETTERS[(id % 24) as usize] as char);
    for _ in 0..5 {
        code.push(LETTERS[(n % 24) as usize] as char);
        n /= 24;
    }
    code.push_str(&id.to_string());
    code
}

/// `POST /api/user/register`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Registration {
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) first_name: String,
    pub(crate) last_name: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) associated_id: u64,
}

/// `POST /api/v2/data/session/start`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SessionStart {
    pub(crate) user_session_id: String,
    pub(crate) course_id: u64,
    pub(crate) device_id: String,
    pub(crate) game_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn teacher(state: &mut State) -> String {
        state
            .login(TEACHER_USERNAME, TEACHER_PASSWORD, Role::Teacher)
            .unwrap()
            .session_id
    }

    #[test]
    fn second_login_revokes_the_first() {
        let mut state = State::new(2);
        let first = teacher(&mut state);
        let second = teacher(&mut state);
        assert_eq!(state.caller(Some(&first)).unwrap_err().status, 401);
        assert_eq!(
            state.caller(Some(&second)).unwrap().username,
            TEACHER_USERNAME
        );
    }

    #[test]
    fn duplicate_class_title_is_refused() {
        let mut state = State::new(2);
        let sid = teacher(&mut state);
        state.create_course(Some(&sid), "Math", "7").unwrap();
        let err = state.create_course(Some(&sid), "Math", "7").unwrap_err();
        assert_eq!(
            err,
            Refusal::new(409, "you already have a class titled \"Math\"")
        );
    }

    #[test]
    fn class_codes_are_distinct() {
        let mut state = State::new(2);
        let rows = state.seed(50, 1);
        assert_eq!(rows.len(), 50);
        let mut codes: Vec<_> = state.courses.iter().map(|c| c.code.clone()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), 50);
        assert_eq!(
            state.validate_code(&state.courses[7].code.to_lowercase()),
            Ok(8)
        );
    }

    #[test]
    fn events_must_name_a_live_session_of_the_caller() {
        let mut state = State::new(3);
        state.seed(1, 2);
        let a = state
            .login("student-001-001", "pw-001-001", Role::Student)
            .unwrap()
            .session_id;
        let b = state
            .login("student-001-002", "pw-001-002", Role::Student)
            .unwrap()
            .session_id;
        let start = |sid: &str| SessionStart {
            user_session_id: sid.to_owned(),
            course_id: 1,
            device_id: "dev".to_owned(),
            game_id: GAME_ID.to_owned(),
        };
        let game_a = state.start_game_session(Some(&a), &start(&a)).unwrap()["gameSessionId"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            state
                .post_events(Some(&b), std::slice::from_ref(&game_a))
                .unwrap_err()
                .status,
            400
        );
        state
            .post_events(Some(&a), &[game_a.clone(), game_a.clone()])
            .unwrap();
        state.end_game_session(Some(&a), &game_a).unwrap();
        let err = state
            .post_events(Some(&a), std::slice::from_ref(&game_a))
            .unwrap_err();
        assert!(err.message.contains("has ended"), "{err:?}");
        let games = state.game_sessions();
        assert_eq!(games[0].events, 2);
        assert_eq!(games[0].event_times_ms.len(), 1);
    }

    #[test]
    fn posting_to_or_ending_a_game_session_says_why_it_is_refused() {
        let mut state = State::new(3);
        state.seed(1, 2);
        let login = |state: &mut State, n: u32| {
            let (user, password) = (format!("student-001-00{n}"), format!("pw-001-00{n}"));
            state
                .login(&user, &password, Role::Student)
                .unwrap()
                .session_id
        };
        let (a, b) = (login(&mut state, 1), login(&mut state, 2));
        let start = SessionStart {
            user_session_id: a.clone(),
            course_id: 1,
            device_id: "dev".to_owned(),
            game_id: GAME_ID.to_owned(),
        };
        let game = state.start_game_session(Some(&a), &start).unwrap()["gameSessionId"]
            .as_str()
            .unwrap()
            .to_owned();
        let post = |state: &mut State, sid: &str, id: &str| {
            let ids = [id.to_owned()];
            state.post_events(Some(sid), &ids).unwrap_err().message
        };
        let end = |state: &mut State, sid: &str, id: &str| {
            state.end_game_session(Some(sid), id).unwrap_err().message
        };
        assert_eq!(
            post(&mut state, &a, "g-none"),
            "event 0: no live game session \"g-none\""
        );
        assert_eq!(end(&mut state, &a, "g-none"), "no game session \"g-none\"");
        assert_eq!(
            post(&mut state, &b, &game),
            format!("event 0: game session {game:?} belongs to another user")
        );
        assert_eq!(
            end(&mut state, &b, &game),
            format!("game session {game:?} belongs to another user")
        );
        state.end_game_session(Some(&a), &game).unwrap();
        assert_eq!(
            post(&mut state, &a, &game),
            format!("event 0: game session {game:?} has ended")
        );
        assert_eq!(
            end(&mut state, &a, &game),
            format!("game session {game:?} has already ended")
        );
    }

    #[test]
    fn session_start_checks_identity_and_course() {
        let mut state = State::new(2);
        state.seed(2, 1);
        let a = state
            .login("student-001-001", "pw-001-001", Role::Student)
            .unwrap()
            .session_id;
        let wrong_session = SessionStart {
            user_session_id: "someone-else".to_owned(),
            course_id: 1,
            device_id: "d".to_owned(),
            game_id: GAME_ID.to_owned(),
        };
        assert!(
            state
                .start_game_session(Some(&a), &wrong_session)
                .unwrap_err()
                .message
                .contains("userSessionId")
        );
        let wrong_course = SessionStart {
            user_session_id: a.clone(),
            course_id: 2,
            ..wrong_session
        };
        assert!(
            state
                .start_game_session(Some(&a), &wrong_course)
                .unwrap_err()
                .message
                .contains("courseId")
        );
    }
}
