DROP INDEX users_search_idx;
