// Written by scripts/git2-calls: do not edit. libgit2's functions, each looked up in libgit2 at its
// first call (git2_loader.c says why).
#include "git2_calls.h"

void git_blob_free(git_blob *blob) { GITMIRROR_GIT2_FUNCTION(git_blob_free)(blob); }
int git_blob_lookup(git_blob **blob, git_repository *repo, const git_oid *id) { return GITMIRROR_GIT2_FUNCTION(git_blob_lookup)(blob, repo, id); }
const void * git_blob_rawcontent(const git_blob *blob) { return GITMIRROR_GIT2_FUNCTION(git_blob_rawcontent)(blob); }
git_object_size_t git_blob_rawsize(const git_blob *blob) { return GITMIRROR_GIT2_FUNCTION(git_blob_rawsize)(blob); }
void git_buf_dispose(git_buf *buffer) { GITMIRROR_GIT2_FUNCTION(git_buf_dispose)(buffer); }
void git_commit_free(git_commit *commit) { GITMIRROR_GIT2_FUNCTION(git_commit_free)(commit); }
int git_commit_lookup(git_commit **commit, git_repository *repo, const git_oid *id) { return GITMIRROR_GIT2_FUNCTION(git_commit_lookup)(commit, repo, id); }
const git_oid * git_commit_tree_id(const git_commit *commit) { return GITMIRROR_GIT2_FUNCTION(git_commit_tree_id)(commit); }
void git_credential_free(git_credential *cred) { GITMIRROR_GIT2_FUNCTION(git_credential_free)(cred); }
int git_credential_ssh_key_memory_new(git_credential **out, const char *username, const char *publickey, const char *privatekey, const char *passphrase) { return GITMIRROR_GIT2_FUNCTION(git_credential_ssh_key_memory_new)(out, username, publickey, privatekey, passphrase); }
int git_credential_username_new(git_credential **out, const char *username) { return GITMIRROR_GIT2_FUNCTION(git_credential_username_new)(out, username); }
int git_credential_userpass_plaintext_new(git_credential **out, const char *username, const char *password) { return GITMIRROR_GIT2_FUNCTION(git_credential_userpass_plaintext_new)(out, username, password); }
void git_error_clear(void) { GITMIRROR_GIT2_FUNCTION(git_error_clear)(); }
const git_error * git_error_last(void) { return GITMIRROR_GIT2_FUNCTION(git_error_last)(); }
int git_error_set_str(int error_class, const char *string) { return GITMIRROR_GIT2_FUNCTION(git_error_set_str)(error_class, string); }
int git_fetch_options_init(git_fetch_options *opts, unsigned int version) { return GITMIRROR_GIT2_FUNCTION(git_fetch_options_init)(opts, version); }
int git_graph_descendant_of(git_repository *repo, const git_oid *commit, const git_oid *ancestor) { return GITMIRROR_GIT2_FUNCTION(git_graph_descendant_of)(repo, commit, ancestor); }
int git_libgit2_init(void) { return GITMIRROR_GIT2_FUNCTION(git_libgit2_init)(); }
int git_libgit2_version(int *major, int *minor, int *rev) { return GITMIRROR_GIT2_FUNCTION(git_libgit2_version)(major, minor, rev); }
void git_object_free(git_object *object) { GITMIRROR_GIT2_FUNCTION(git_object_free)(object); }
const git_oid * git_object_id(const git_object *obj) { return GITMIRROR_GIT2_FUNCTION(git_object_id)(obj); }
int git_object_lookup(git_object **object, git_repository *repo, const git_oid *id, git_object_t type) { return GITMIRROR_GIT2_FUNCTION(git_object_lookup)(object, repo, id, type); }
int git_object_peel(git_object **peeled, const git_object *object, git_object_t target_type) { return GITMIRROR_GIT2_FUNCTION(git_object_peel)(peeled, object, target_type); }
int git_odb_add_backend(git_odb *odb, git_odb_backend *backend, int priority) { return GITMIRROR_GIT2_FUNCTION(git_odb_add_backend)(odb, backend, priority); }
int git_odb_exists(git_odb *db, const git_oid *id) { return GITMIRROR_GIT2_FUNCTION(git_odb_exists)(db, id); }
int git_odb_foreach(git_odb *db, git_odb_foreach_cb cb, void *payload) { return GITMIRROR_GIT2_FUNCTION(git_odb_foreach)(db, cb, payload); }
void git_odb_free(git_odb *db) { GITMIRROR_GIT2_FUNCTION(git_odb_free)(db); }
int git_odb_get_backend(git_odb_backend **out, git_odb *odb, size_t pos) { return GITMIRROR_GIT2_FUNCTION(git_odb_get_backend)(out, odb, pos); }
int git_odb_init_backend(git_odb_backend *backend, unsigned int version) { return GITMIRROR_GIT2_FUNCTION(git_odb_init_backend)(backend, version); }
size_t git_odb_num_backends(git_odb *odb) { return GITMIRROR_GIT2_FUNCTION(git_odb_num_backends)(odb); }
void git_odb_object_free(git_odb_object *object) { GITMIRROR_GIT2_FUNCTION(git_odb_object_free)(object); }
int git_odb_read(git_odb_object **out, git_odb *db, const git_oid *id) { return GITMIRROR_GIT2_FUNCTION(git_odb_read)(out, db, id); }
int git_odb_read_header(size_t *len_out, git_object_t *type_out, git_odb *db, const git_oid *id) { return GITMIRROR_GIT2_FUNCTION(git_odb_read_header)(len_out, type_out, db, id); }
int git_odb_refresh(struct git_odb *db) { return GITMIRROR_GIT2_FUNCTION(git_odb_refresh)(db); }
int git_push_options_init(git_push_options *opts, unsigned int version) { return GITMIRROR_GIT2_FUNCTION(git_push_options_init)(opts, version); }
int git_reference_create(git_reference **out, git_repository *repo, const char *name, const git_oid *id, int force, const char *log_message) { return GITMIRROR_GIT2_FUNCTION(git_reference_create)(out, repo, name, id, force, log_message); }
int git_reference_delete(git_reference *ref) { return GITMIRROR_GIT2_FUNCTION(git_reference_delete)(ref); }
void git_reference_free(git_reference *ref) { GITMIRROR_GIT2_FUNCTION(git_reference_free)(ref); }
void git_reference_iterator_free(git_reference_iterator *iter) { GITMIRROR_GIT2_FUNCTION(git_reference_iterator_free)(iter); }
int git_reference_iterator_glob_new(git_reference_iterator **out, git_repository *repo, const char *glob) { return GITMIRROR_GIT2_FUNCTION(git_reference_iterator_glob_new)(out, repo, glob); }
int git_reference_lookup(git_reference **out, git_repository *repo, const char *name) { return GITMIRROR_GIT2_FUNCTION(git_reference_lookup)(out, repo, name); }
const char * git_reference_name(const git_reference *ref) { return GITMIRROR_GIT2_FUNCTION(git_reference_name)(ref); }
int git_reference_name_to_id(git_oid *out, git_repository *repo, const char *name) { return GITMIRROR_GIT2_FUNCTION(git_reference_name_to_id)(out, repo, name); }
int git_reference_next(git_reference **out, git_reference_iterator *iter) { return GITMIRROR_GIT2_FUNCTION(git_reference_next)(out, iter); }
const git_oid * git_reference_target(const git_reference *ref) { return GITMIRROR_GIT2_FUNCTION(git_reference_target)(ref); }
int git_remote_connect_ext(git_remote *remote, git_direction direction, const git_remote_connect_options *opts) { return GITMIRROR_GIT2_FUNCTION(git_remote_connect_ext)(remote, direction, opts); }
int git_remote_connect_options_init(git_remote_connect_options *opts, unsigned int version) { return GITMIRROR_GIT2_FUNCTION(git_remote_connect_options_init)(opts, version); }
int git_remote_connected(const git_remote *remote) { return GITMIRROR_GIT2_FUNCTION(git_remote_connected)(remote); }
int git_remote_create_anonymous(git_remote **out, git_repository *repo, const char *url) { return GITMIRROR_GIT2_FUNCTION(git_remote_create_anonymous)(out, repo, url); }
int git_remote_create_detached(git_remote **out, const char *url) { return GITMIRROR_GIT2_FUNCTION(git_remote_create_detached)(out, url); }
int git_remote_default_branch(git_buf *out, git_remote *remote) { return GITMIRROR_GIT2_FUNCTION(git_remote_default_branch)(out, remote); }
int git_remote_disconnect(git_remote *remote) { return GITMIRROR_GIT2_FUNCTION(git_remote_disconnect)(remote); }
int git_remote_download(git_remote *remote, const git_strarray *refspecs, const git_fetch_options *opts) { return GITMIRROR_GIT2_FUNCTION(git_remote_download)(remote, refspecs, opts); }
void git_remote_free(git_remote *remote) { GITMIRROR_GIT2_FUNCTION(git_remote_free)(remote); }
int git_remote_init_callbacks(git_remote_callbacks *opts, unsigned int version) { return GITMIRROR_GIT2_FUNCTION(git_remote_init_callbacks)(opts, version); }
int git_remote_ls(const git_remote_head ***out, size_t *size, git_remote *remote) { return GITMIRROR_GIT2_FUNCTION(git_remote_ls)(out, size, remote); }
int git_remote_update_tips(git_remote *remote, const git_remote_callbacks *callbacks, int update_fetchhead, git_remote_autotag_option_t download_tags, const char *reflog_message) { return GITMIRROR_GIT2_FUNCTION(git_remote_update_tips)(remote, callbacks, update_fetchhead, download_tags, reflog_message); }
int git_remote_upload(git_remote *remote, const git_strarray *refspecs, const git_push_options *opts) { return GITMIRROR_GIT2_FUNCTION(git_remote_upload)(remote, refspecs, opts); }
void git_repository_free(git_repository *repo) { GITMIRROR_GIT2_FUNCTION(git_repository_free)(repo); }
int git_repository_init(git_repository **out, const char *path, unsigned is_bare) { return GITMIRROR_GIT2_FUNCTION(git_repository_init)(out, path, is_bare); }
int git_repository_odb(git_odb **out, git_repository *repo) { return GITMIRROR_GIT2_FUNCTION(git_repository_odb)(out, repo); }
int git_repository_open_bare(git_repository **out, const char *bare_path) { return GITMIRROR_GIT2_FUNCTION(git_repository_open_bare)(out, bare_path); }
const char * git_repository_path(const git_repository *repo) { return GITMIRROR_GIT2_FUNCTION(git_repository_path)(repo); }
int git_repository_set_head(git_repository *repo, const char *refname) { return GITMIRROR_GIT2_FUNCTION(git_repository_set_head)(repo, refname); }
void git_revwalk_free(git_revwalk *walk) { GITMIRROR_GIT2_FUNCTION(git_revwalk_free)(walk); }
int git_revwalk_hide(git_revwalk *walk, const git_oid *commit_id) { return GITMIRROR_GIT2_FUNCTION(git_revwalk_hide)(walk, commit_id); }
int git_revwalk_new(git_revwalk **out, git_repository *repo) { return GITMIRROR_GIT2_FUNCTION(git_revwalk_new)(out, repo); }
int git_revwalk_next(git_oid *out, git_revwalk *walk) { return GITMIRROR_GIT2_FUNCTION(git_revwalk_next)(out, walk); }
int git_revwalk_push(git_revwalk *walk, const git_oid *id) { return GITMIRROR_GIT2_FUNCTION(git_revwalk_push)(walk, id); }
const git_tree_entry * git_tree_entry_byindex(const git_tree *tree, size_t idx) { return GITMIRROR_GIT2_FUNCTION(git_tree_entry_byindex)(tree, idx); }
const git_oid * git_tree_entry_id(const git_tree_entry *entry) { return GITMIRROR_GIT2_FUNCTION(git_tree_entry_id)(entry); }
git_object_t git_tree_entry_type(const git_tree_entry *entry) { return GITMIRROR_GIT2_FUNCTION(git_tree_entry_type)(entry); }
size_t git_tree_entrycount(const git_tree *tree) { return GITMIRROR_GIT2_FUNCTION(git_tree_entrycount)(tree); }
void git_tree_free(git_tree *tree) { GITMIRROR_GIT2_FUNCTION(git_tree_free)(tree); }
int git_tree_lookup(git_tree **out, git_repository *repo, const git_oid *id) { return GITMIRROR_GIT2_FUNCTION(git_tree_lookup)(out, repo, id); }
