//! The mutation root. Each family of writes lives in its own module; every write checks its
//! input before any upstream call, reports expected failures as `userErrors`, and forgets
//! what it touched from the cache before answering.

pub mod b2b_users;
pub mod identities;
pub mod link_identity;
pub mod merge;
pub mod organizations;
pub mod outcome;
pub mod persons;
pub mod register;
pub mod sales_entities;
pub mod validate;

use async_graphql::{Context, ID, Object, Result};

use b2b_users::{AssignB2bRemoteIdPayload, SetB2bUserActivePayload, UpdateB2bUserInput, UpdateB2bUserPayload};
use identities::{UpdateIdentityInput, UpdateIdentityPayload};
use link_identity::{IdentityLinkInput, LinkIdentityPayload, UnlinkIdentityPayload};
use merge::{MergePersonsInput, MergePersonsPayload};
use organizations::{CreateOrganizationInput, OrganizationPayload, UpdateOrganizationInput};
use persons::{
    CreatePersonInput, DeletePayload, InvitePersonInput, InvitePersonPayload, LinkPersonToUserInput,
    LinkPersonToUserPayload, PersonPayload, UpdatePersonInput,
};
use register::{
    RegisterIdentityInput, RegisterIdentityPayload, RegisterOrganizationInput, RegisterOrganizationPayload,
};
use sales_entities::{RegisterSalesEntityInput, RegisterSalesEntityPayload};

/// Writes across the blocks.
pub struct MutationRoot;

/// Register, invite, link and merge across the blocks, plus the plain updates they offer.
#[Object(name = "Mutation")]
impl MutationRoot {
    /// Registers an identity in the chosen blocks concurrently and reports each block's
    /// outcome. Retrying with the same `uniqueId` completes only what failed.
    async fn register_identity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Who to register, and in which blocks.")] input: RegisterIdentityInput,
    ) -> Result<RegisterIdentityPayload> {
        register::register_identity(ctx, input).await
    }

    /// Creates a CRM organization, then a Sales entity with the organization's id.
    async fn register_organization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization to register.")] input: RegisterOrganizationInput,
    ) -> Result<RegisterOrganizationPayload> {
        register::register_organization(ctx, input).await
    }

    /// Invites a CRM person to the platform (an existing active invitation is reported as
    /// `conflict`).
    async fn invite_person(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Whom to invite, and with which privileges.")] input: InvitePersonInput,
    ) -> Result<InvitePersonPayload> {
        persons::invite_person(ctx, input).await
    }

    /// Binds a CRM person to an existing platform user; idempotent. A person bound to
    /// another user is reported as `ALREADY_LINKED_TO_OTHER_USER`.
    async fn link_person_to_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The person and the platform user to bind.")] input: LinkPersonToUserInput,
    ) -> Result<LinkPersonToUserPayload> {
        persons::link_person_to_user(ctx, input).await
    }

    /// Merges duplicate persons into a primary; returns the primary read fresh. With
    /// `dryRun: true`, writes nothing and answers what the merge would do.
    async fn merge_persons(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The primary person and the duplicates to merge into it.")] input: MergePersonsInput,
    ) -> Result<MergePersonsPayload> {
        merge::merge_persons(ctx, input).await
    }

    /// Links an identity to a CRM person or a B2B user in the identity link index, after
    /// checking that the blocks know both. Idempotent; a record linked to another identity
    /// is a user error, never overwritten.
    async fn link_identity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The identity and the record to link it to.")] input: IdentityLinkInput,
    ) -> Result<LinkIdentityPayload> {
        link_identity::link_identity(ctx, input).await
    }

    /// Removes an identity's link to a CRM person or a B2B user from the identity link index
    /// (the records themselves are untouched).
    async fn unlink_identity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The identity and the record to unlink.")] input: IdentityLinkInput,
    ) -> Result<UnlinkIdentityPayload> {
        link_identity::unlink_identity(ctx, input).await
    }

    /// Updates an identity in every 23blocks block that knows it.
    async fn update_identity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The identity and the fields to change.")] input: UpdateIdentityInput,
    ) -> Result<UpdateIdentityPayload> {
        identities::update_identity(ctx, input).await
    }

    /// Creates a CRM person.
    async fn create_person(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new person's fields.")] input: CreatePersonInput,
    ) -> Result<PersonPayload> {
        persons::create_person(ctx, input).await
    }

    /// Updates a CRM person; only the fields given are sent.
    async fn update_person(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The person and the fields to change.")] input: UpdatePersonInput,
    ) -> Result<PersonPayload> {
        persons::update_person(ctx, input).await
    }

    /// Deletes a CRM person.
    async fn delete_person(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The person UUID.")] id: ID,
    ) -> Result<DeletePayload> {
        persons::delete_person(ctx, id).await
    }

    /// Creates a CRM organization (without a Sales entity; see `registerOrganization`).
    async fn create_organization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new organization's fields.")] input: CreateOrganizationInput,
    ) -> Result<OrganizationPayload> {
        organizations::create_organization(ctx, input).await
    }

    /// Updates a CRM organization; only the fields given are sent.
    async fn update_organization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization and the fields to change.")] input: UpdateOrganizationInput,
    ) -> Result<OrganizationPayload> {
        organizations::update_organization(ctx, input).await
    }

    /// Deletes a CRM organization; its persons are kept without an organization.
    async fn delete_organization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The organization UUID.")] id: ID,
    ) -> Result<DeletePayload> {
        organizations::delete_organization(ctx, id).await
    }

    /// Registers a Sales entity; retrying with the same `uniqueId` is idempotent.
    async fn register_sales_entity(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The entity to register.")] input: RegisterSalesEntityInput,
    ) -> Result<RegisterSalesEntityPayload> {
        sales_entities::register_sales_entity(ctx, input).await
    }

    /// Activates or deactivates a B2B user.
    #[graphql(name = "setB2BUserActive")]
    async fn set_b2b_user_active(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The B2B user id.")] id: i64,
        #[graphql(desc = "True to activate, false to deactivate.")] active: bool,
    ) -> Result<SetB2bUserActivePayload> {
        b2b_users::set_b2b_user_active(ctx, id, active).await
    }

    /// Updates a B2B user's names, phone number or division; only the fields given are sent.
    #[graphql(name = "updateB2BUser")]
    async fn update_b2b_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The B2B user id.")] id: i64,
        #[graphql(desc = "The fields to change.")] input: UpdateB2bUserInput,
    ) -> Result<UpdateB2bUserPayload> {
        b2b_users::update_b2b_user(ctx, id, input).await
    }

    /// Asks the B2B block to fetch the user's id on the Commerce platform (its
    /// `update_remote_id`); a user with a remote id is listed in `b2bUsers`.
    #[graphql(name = "assignB2BRemoteId")]
    async fn assign_b2b_remote_id(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The B2B user id.")] id: i64,
    ) -> Result<AssignB2bRemoteIdPayload> {
        b2b_users::assign_b2b_remote_id(ctx, id).await
    }
}
