"""/api/v1/users/{user_id}/labels: a user's labels, each with a colour; tasks carry their ids."""
