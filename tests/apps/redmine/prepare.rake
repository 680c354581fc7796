# Loaded by install.sh (`rake --rakelib tests/apps/redmine redmine:load_default_data
# chorus:prepare`, template instance) after the migrations and the default data: the project the
# tests' sessions work in, with the issue tracker, and the role their accounts get
# (tests/apps/redmine.rs adds the accounts and their memberships to each instance's copy of
# this database).
namespace :chorus do
  task prepare: :environment do
    role = Role.find_or_initialize_by(name: 'Member')
    role.assignable = true
    role.issues_visibility = 'all'
    role.permissions = %i[
      view_issues add_issues edit_issues edit_own_issues add_issue_notes edit_own_issue_notes
      delete_issues view_private_notes set_notes_private manage_subtasks
      view_project view_changesets view_time_entries
    ]
    role.save!

    project = Project.find_or_initialize_by(identifier: 'team')
    project.name = 'Team'
    project.description = 'Where the team tracks its work.'
    project.is_public = false
    project.enabled_module_names = %w[issue_tracking]
    project.trackers = Tracker.all
    project.save!

    Setting.default_language = 'en'
    Setting.login_required = '0'
    # Everything the server will load, loaded once, for bootsnap's cache.
    Rails.application.eager_load!
    puts "prepared: project #{project.identifier} (id #{project.id}), role #{role.name} (id #{role.id})"
  end
end
