-- The forum of tests/apps/graphql, after PostGraphile's own tutorial schema: people with
-- accounts (e-mail, bcrypt password through pgcrypto), posts by an author, a login function
-- returning a JWT, and row-level security so that a person changes only their own posts.
-- A trigger keeps forum_private.post_log, the audit the tests judge by (every insert, update
-- and delete with the author and the person who made it). Loaded into a fresh database as the
-- superuser; the roles are the cluster's, created here.

create extension if not exists pgcrypto;

create role forum_postgraphile login password 'forum';
create role forum_anonymous;
create role forum_person;
grant forum_anonymous to forum_postgraphile;
grant forum_person to forum_postgraphile;

create schema forum;
create schema forum_private;

create table forum.person (
  id serial primary key,
  username text not null unique,
  first_name text not null,
  created_at timestamptz not null default now()
);
comment on table forum.person is 'A user of the forum.';

create table forum_private.person_account (
  person_id integer primary key references forum.person(id) on delete cascade,
  email text not null unique check (email ~* '^.+@.+\..+$'),
  password_hash text not null
);

create table forum.post (
  id serial primary key,
  author_id integer not null references forum.person(id),
  headline text not null check (char_length(headline) < 280),
  body text,
  created_at timestamptz not null default now()
);
create index post_author_id_idx on forum.post(author_id);
comment on table forum.post is 'A forum post written by a person.';

create type forum.jwt_token as (
  role text,
  person_id integer,
  exp bigint
);

create function forum.authenticate(email text, password text) returns forum.jwt_token as $$
  select ('forum_person', a.person_id, extract(epoch from now() + interval '1 day'))::forum.jwt_token
  from forum_private.person_account as a
  where a.email = authenticate.email and a.password_hash = crypt(password, a.password_hash);
$$ language sql strict security definer;
comment on function forum.authenticate(text, text) is 'Logs a person in: a JWT, or null.';

create function forum.current_person_id() returns integer as $$
  select nullif(current_setting('jwt.claims.person_id', true), '')::integer;
$$ language sql stable;

create function forum.current_person() returns forum.person as $$
  select * from forum.person where id = forum.current_person_id();
$$ language sql stable;
comment on function forum.current_person() is 'The person who is logged in.';

create table forum_private.post_log (
  seq bigserial primary key,
  op text not null,
  post_id integer not null,
  author_id integer not null,
  acted_by integer,
  headline text,
  at timestamptz not null default clock_timestamp()
);

create function forum_private.log_post() returns trigger as $$
begin
  if tg_op = 'DELETE' then
    insert into forum_private.post_log (op, post_id, author_id, acted_by, headline)
    values (tg_op, old.id, old.author_id, forum.current_person_id(), old.headline);
    return old;
  end if;
  insert into forum_private.post_log (op, post_id, author_id, acted_by, headline)
  values (tg_op, new.id, new.author_id, forum.current_person_id(), new.headline);
  return new;
end;
$$ language plpgsql security definer;

create trigger post_log after insert or update or delete on forum.post
  for each row execute procedure forum_private.log_post();

alter default privileges revoke execute on functions from public;
revoke execute on all functions in schema forum from public;
grant usage on schema forum to forum_anonymous, forum_person;
grant select on table forum.person to forum_anonymous, forum_person;
grant select on table forum.post to forum_anonymous, forum_person;
grant insert, update, delete on table forum.post to forum_person;
grant usage on sequence forum.post_id_seq to forum_person;
grant execute on function forum.authenticate(text, text) to forum_anonymous, forum_person;
grant execute on function forum.current_person_id() to forum_anonymous, forum_person;
grant execute on function forum.current_person() to forum_anonymous, forum_person;

alter table forum.post enable row level security;
create policy select_post on forum.post for select using (true);
create policy insert_post on forum.post for insert to forum_person
  with check (author_id = forum.current_person_id());
create policy update_post on forum.post for update to forum_person
  using (author_id = forum.current_person_id());
create policy delete_post on forum.post for delete to forum_person
  using (author_id = forum.current_person_id());
