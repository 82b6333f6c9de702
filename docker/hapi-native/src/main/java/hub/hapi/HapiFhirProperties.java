package hub.hapi;

import ca.uhn.fhir.context.FhirVersionEnum;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings.ClientIdStrategyEnum;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings.IdStrategyEnum;
import ca.uhn.fhir.rest.api.EncodingEnum;
import java.util.ArrayList;
import java.util.List;
import org.springframework.boot.context.properties.ConfigurationProperties;

/**
 * The `hapi.fhir.*` settings, under the names the official hapiproject/hapi image reads, so
 * that one file (docker/hapi/application.yaml) configures both that image and this launcher.
 *
 * <p>Only the keys below are known here, and an unknown key stops the start-up
 * (ignoreUnknownFields = false): a setting the image would honour and this launcher would
 * silently ignore would make the tests run on another server than production. Features this
 * launcher does not have (subscription delivery, narratives, repository validation) are
 * accepted only switched off; see {@link #checkSupported()}.
 */
@ConfigurationProperties(prefix = "hapi.fhir", ignoreUnknownFields = false)
public class HapiFhirProperties {

	private FhirVersionEnum fhirVersion = FhirVersionEnum.R4;
	private ClientIdStrategyEnum clientIdStrategy = ClientIdStrategyEnum.ALPHANUMERIC;
	private IdStrategyEnum serverIdStrategy;
	private Long reuseCachedSearchResultsMillis = 60_000L;
	private Long retainCachedSearchesMins = 60L;
	private boolean allowExternalReferences;
	private List<String> localBaseUrls = new ArrayList<>();
	private boolean allowContainsSearches = true;
	private boolean allowMultipleDelete;
	private boolean autoCreatePlaceholderReferenceTargets;
	private boolean enforceReferentialIntegrityOnWrite = true;
	private boolean enforceReferentialIntegrityOnDelete = true;
	private boolean enableIndexMissingFields;
	private boolean expungeEnabled = true;
	private boolean deleteExpungeEnabled;
	private boolean etagSupportEnabled = true;
	private boolean narrativeEnabled = true;
	private boolean defaultPrettyPrint = true;
	private EncodingEnum defaultEncoding = EncodingEnum.JSON;
	private int defaultPageSize = 20;
	private int maxPageSize = Integer.MAX_VALUE;
	private List<Integer> searchPrefetchThresholds = new ArrayList<>();
	private boolean enableRepositoryValidatingInterceptor;
	private Validation validation = new Validation();
	private Subscription subscription = new Subscription();

	/** Refuses settings that ask for something this launcher does not provide. */
	public void checkSupported() {
		require(fhirVersion == FhirVersionEnum.R4, "fhir_version must be R4");
		require(!narrativeEnabled, "narrative_enabled: this launcher generates no narratives");
		require(
				!enableRepositoryValidatingInterceptor,
				"enable_repository_validating_interceptor: not available in this launcher");
		require(
				!subscription.resthookEnabled && !subscription.websocketEnabled,
				"subscription.*_enabled: this launcher delivers no subscriptions (the hub does)");
	}

	private static void require(boolean condition, String message) {
		if (!condition) {
			throw new IllegalStateException("hapi.fhir." + message);
		}
	}

	/** `hapi.fhir.validation.*`: validating requests and responses against the base spec. */
	public static class Validation {
		private boolean requestsEnabled;
		private boolean responsesEnabled;

		public boolean isRequestsEnabled() {
			return requestsEnabled;
		}

		public void setRequestsEnabled(boolean value) {
			requestsEnabled = value;
		}

		public boolean isResponsesEnabled() {
			return responsesEnabled;
		}

		public void setResponsesEnabled(boolean value) {
			responsesEnabled = value;
		}
	}

	/** `hapi.fhir.subscription.*`: channels HAPI itself would deliver. */
	public static class Subscription {
		private boolean resthookEnabled;
		private boolean websocketEnabled;

		public boolean isResthookEnabled() {
			return resthookEnabled;
		}

		public void setResthookEnabled(boolean value) {
			resthookEnabled = value;
		}

		public boolean isWebsocketEnabled() {
			return websocketEnabled;
		}

		public void setWebsocketEnabled(boolean value) {
			websocketEnabled = value;
		}
	}

	// --- accessors (Spring binds through the setters) ---------------------------------------

	public FhirVersionEnum getFhirVersion() {
		return fhirVersion;
	}

	public void setFhirVersion(FhirVersionEnum value) {
		fhirVersion = value;
	}

	public ClientIdStrategyEnum getClientIdStrategy() {
		return clientIdStrategy;
	}

	public void setClientIdStrategy(ClientIdStrategyEnum value) {
		clientIdStrategy = value;
	}

	public IdStrategyEnum getServerIdStrategy() {
		return serverIdStrategy;
	}

	public void setServerIdStrategy(IdStrategyEnum value) {
		serverIdStrategy = value;
	}

	public Long getReuseCachedSearchResultsMillis() {
		return reuseCachedSearchResultsMillis;
	}

	public void setReuseCachedSearchResultsMillis(Long value) {
		reuseCachedSearchResultsMillis = value;
	}

	public Long getRetainCachedSearchesMins() {
		return retainCachedSearchesMins;
	}

	public void setRetainCachedSearchesMins(Long value) {
		retainCachedSearchesMins = value;
	}

	public boolean isAllowExternalReferences() {
		return allowExternalReferences;
	}

	public void setAllowExternalReferences(boolean value) {
		allowExternalReferences = value;
	}

	public List<String> getLocalBaseUrls() {
		return localBaseUrls;
	}

	public void setLocalBaseUrls(List<String> value) {
		localBaseUrls = value;
	}

	public boolean isAllowContainsSearches() {
		return allowContainsSearches;
	}

	public void setAllowContainsSearches(boolean value) {
		allowContainsSearches = value;
	}

	public boolean isAllowMultipleDelete() {
		return allowMultipleDelete;
	}

	public void setAllowMultipleDelete(boolean value) {
		allowMultipleDelete = value;
	}

	public boolean isAutoCreatePlaceholderReferenceTargets() {
		return autoCreatePlaceholderReferenceTargets;
	}

	public void setAutoCreatePlaceholderReferenceTargets(boolean value) {
		autoCreatePlaceholderReferenceTargets = value;
	}

	public boolean isEnforceReferentialIntegrityOnWrite() {
		return enforceReferentialIntegrityOnWrite;
	}

	public void setEnforceReferentialIntegrityOnWrite(boolean value) {
		enforceReferentialIntegrityOnWrite = value;
	}

	public boolean isEnforceReferentialIntegrityOnDelete() {
		return enforceReferentialIntegrityOnDelete;
	}

	public void setEnforceReferentialIntegrityOnDelete(boolean value) {
		enforceReferentialIntegrityOnDelete = value;
	}

	public boolean isEnableIndexMissingFields() {
		return enableIndexMissingFields;
	}

	public void setEnableIndexMissingFields(boolean value) {
		enableIndexMissingFields = value;
	}

	public boolean isExpungeEnabled() {
		return expungeEnabled;
	}

	public void setExpungeEnabled(boolean value) {
		expungeEnabled = value;
	}

	public boolean isDeleteExpungeEnabled() {
		return deleteExpungeEnabled;
	}

	public void setDeleteExpungeEnabled(boolean value) {
		deleteExpungeEnabled = value;
	}

	public boolean isEtagSupportEnabled() {
		return etagSupportEnabled;
	}

	public void setEtagSupportEnabled(boolean value) {
		etagSupportEnabled = value;
	}

	public boolean isNarrativeEnabled() {
		return narrativeEnabled;
	}

	public void setNarrativeEnabled(boolean value) {
		narrativeEnabled = value;
	}

	public boolean isDefaultPrettyPrint() {
		return defaultPrettyPrint;
	}

	public void setDefaultPrettyPrint(boolean value) {
		defaultPrettyPrint = value;
	}

	public EncodingEnum getDefaultEncoding() {
		return defaultEncoding;
	}

	public void setDefaultEncoding(EncodingEnum value) {
		defaultEncoding = value;
	}

	public int getDefaultPageSize() {
		return defaultPageSize;
	}

	public void setDefaultPageSize(int value) {
		defaultPageSize = value;
	}

	public int getMaxPageSize() {
		return maxPageSize;
	}

	public void setMaxPageSize(int value) {
		maxPageSize = value;
	}

	public List<Integer> getSearchPrefetchThresholds() {
		return searchPrefetchThresholds;
	}

	public void setSearchPrefetchThresholds(List<Integer> value) {
		searchPrefetchThresholds = value;
	}

	public boolean isEnableRepositoryValidatingInterceptor() {
		return enableRepositoryValidatingInterceptor;
	}

	public void setEnableRepositoryValidatingInterceptor(boolean value) {
		enableRepositoryValidatingInterceptor = value;
	}

	public Validation getValidation() {
		return validation;
	}

	public void setValidation(Validation value) {
		validation = value;
	}

	public Subscription getSubscription() {
		return subscription;
	}

	public void setSubscription(Subscription value) {
		subscription = value;
	}
}
