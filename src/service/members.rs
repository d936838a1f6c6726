//! Members: the people of an organization — creating them, their profile, their roles, their
//! place in the tree, and ownership.
