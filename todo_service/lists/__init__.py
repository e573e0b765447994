"""/api/v1/users/{user_id}/lists: a user's task lists, the Inbox among them."""
